//! EAS protocol versions 2.5 to 16.1, as the `MS-ASProtocolVersion` header spells them and
//! as the base64 query encodes them (version x 10 in one byte).

use std::fmt;
use std::str::FromStr;

/// A protocol version a device and a server can agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    V2_5,
    V12_0,
    V12_1,
    V14_0,
    V14_1,
    V16_0,
    V16_1,
}

/// A version string or byte that is not one of the EAS versions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown EAS protocol version {0:?} (expected one of 2.5, 12.0, 12.1, 14.0, 14.1, 16.0, 16.1)"
)]
pub struct UnknownVersion(pub String);

impl ProtocolVersion {
    /// Every version, oldest first.
    pub const ALL: [ProtocolVersion; 7] = [
        Self::V2_5,
        Self::V12_0,
        Self::V12_1,
        Self::V14_0,
        Self::V14_1,
        Self::V16_0,
        Self::V16_1,
    ];

    /// The header form: `14.1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2_5 => "2.5",
            Self::V12_0 => "12.0",
            Self::V12_1 => "12.1",
            Self::V14_0 => "14.0",
            Self::V14_1 => "14.1",
            Self::V16_0 => "16.0",
            Self::V16_1 => "16.1",
        }
    }

    /// The base64-query byte: version x 10 (14.1 is 141 = 0x8D).
    pub fn code(self) -> u8 {
        match self {
            Self::V2_5 => 25,
            Self::V12_0 => 120,
            Self::V12_1 => 121,
            Self::V14_0 => 140,
            Self::V14_1 => 141,
            Self::V16_0 => 160,
            Self::V16_1 => 161,
        }
    }

    /// The version for a base64-query byte.
    pub fn from_code(code: u8) -> Result<Self, UnknownVersion> {
        Self::ALL
            .into_iter()
            .find(|version| version.code() == code)
            .ok_or_else(|| UnknownVersion(format!("code {code}")))
    }

    /// 12.1 and later may use the base64 query; 2.5 and 12.0 must not.
    pub fn allows_base64_query(self) -> bool {
        self >= Self::V12_1
    }

    /// 14.0 and later report provisioning problems as a WBXML status instead of HTTP 449.
    pub fn has_common_status_codes(self) -> bool {
        self >= Self::V14_0
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProtocolVersion {
    type Err = UnknownVersion;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        Self::ALL
            .into_iter()
            .find(|version| version.as_str() == text)
            .ok_or_else(|| UnknownVersion(text.to_owned()))
    }
}

impl serde::Serialize for ProtocolVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ProtocolVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_codes_round_trip() {
        for version in ProtocolVersion::ALL {
            assert_eq!(version.as_str().parse(), Ok(version));
            assert_eq!(ProtocolVersion::from_code(version.code()), Ok(version));
        }
        assert_eq!(ProtocolVersion::V14_1.code(), 0x8D);
        assert!("15.0".parse::<ProtocolVersion>().is_err());
        assert!(ProtocolVersion::from_code(0).is_err());
    }

    #[test]
    fn version_gates() {
        assert!(!ProtocolVersion::V12_0.allows_base64_query());
        assert!(ProtocolVersion::V12_1.allows_base64_query());
        assert!(!ProtocolVersion::V12_1.has_common_status_codes());
        assert!(ProtocolVersion::V14_0.has_common_status_codes());
    }
}
