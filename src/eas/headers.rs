//! The HTTP headers EAS defines (MS-ASHTTP 2.2.2 and 2.2.4) and the Basic credentials
//! every request carries.

use base64::Engine as _;

pub const MS_AS_PROTOCOL_VERSION: &str = "MS-ASProtocolVersion";
pub const MS_AS_PROTOCOL_VERSIONS: &str = "MS-ASProtocolVersions";
pub const MS_AS_PROTOCOL_COMMANDS: &str = "MS-ASProtocolCommands";
pub const MS_SERVER_ACTIVESYNC: &str = "MS-Server-ActiveSync";
pub const X_MS_POLICY_KEY: &str = "X-MS-PolicyKey";
pub const X_MS_LOCATION: &str = "X-MS-Location";
/// The content type of every WBXML body.
pub const CONTENT_TYPE_WBXML: &str = "application/vnd.ms-sync.wbxml";

/// A user name and password from `Authorization: Basic ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    pub user: String,
    pub password: String,
}

/// Why an `Authorization` header is not usable Basic credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the Authorization scheme is not Basic")]
    NotBasic,
    #[error("the Basic credentials are not base64 of UTF-8 user:password")]
    Malformed,
}

impl BasicCredentials {
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
        }
    }

    /// Reads an `Authorization` header value. A `DOMAIN\user` login keeps its domain.
    pub fn from_header(value: &str) -> Result<Self, AuthError> {
        let (scheme, encoded) = value.trim().split_once(' ').ok_or(AuthError::NotBasic)?;
        if !scheme.eq_ignore_ascii_case("Basic") {
            return Err(AuthError::NotBasic);
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| AuthError::Malformed)?;
        let text = String::from_utf8(decoded).map_err(|_| AuthError::Malformed)?;
        let (user, password) = text.split_once(':').ok_or(AuthError::Malformed)?;
        Ok(Self::new(user, password))
    }

    /// The `Authorization` header value.
    pub fn to_header(&self) -> String {
        let raw = format!("{}:{}", self.user, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Reads an `X-MS-PolicyKey` value: a uint32 in decimal.
pub fn parse_policy_key(value: &str) -> Option<u32> {
    value.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_round_trip() {
        let credentials = BasicCredentials::new("CORP\\jdoe", "p:ss");
        let header = credentials.to_header();
        assert_eq!(header, "Basic Q09SUFxqZG9lOnA6c3M=");
        assert_eq!(BasicCredentials::from_header(&header), Ok(credentials));
    }

    #[test]
    fn bad_authorization_values() {
        assert_eq!(
            BasicCredentials::from_header("Bearer abc"),
            Err(AuthError::NotBasic)
        );
        assert_eq!(
            BasicCredentials::from_header("Basic !!"),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            BasicCredentials::from_header("Basic bm9jb2xvbg=="),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn policy_keys_are_decimal_uint32() {
        assert_eq!(parse_policy_key(" 1307199584 "), Some(1_307_199_584));
        assert_eq!(parse_policy_key("-1"), None);
    }
}
