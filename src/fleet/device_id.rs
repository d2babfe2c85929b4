//! The DeviceId prefix: its default and its check (MS-ASCMD allows 32 characters of
//! letters and digits; a device appends 16 hex digits of its own).

/// The DeviceId prefix when none is given.
pub(crate) const DEFAULT_DEVICE_ID_PREFIX: &str = "pf";
/// Longest DeviceId prefix: with the 16 hex digits after it a DeviceId stays within
/// the 32 characters MS-ASCMD allows.
pub(crate) const MAX_DEVICE_ID_PREFIX: usize = 16;

/// A DeviceId prefix that cannot start a DeviceId.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{prefix:?}: a DeviceId prefix is at most {MAX_DEVICE_ID_PREFIX} letters and digits")]
pub(crate) struct DeviceIdPrefixError {
    pub prefix: String,
}

/// Whether `prefix` can start a DeviceId: letters and digits only (MS-ASCMD), at most
/// [`MAX_DEVICE_ID_PREFIX`] of them.
pub(crate) fn check_device_id_prefix(prefix: &str) -> Result<(), DeviceIdPrefixError> {
    if prefix.len() > MAX_DEVICE_ID_PREFIX || !prefix.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(DeviceIdPrefixError {
            prefix: prefix.to_owned(),
        });
    }
    Ok(())
}
