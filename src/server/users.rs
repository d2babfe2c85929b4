//! Who may log in: synthetic users (`user0` ... `user{N-1}` sharing one password, so a
//! 100,000-device run needs no user file and no memory per unused user) or a
//! `user:password` file.

use std::collections::HashMap;
use std::path::Path;

/// The accounts a server accepts.
#[derive(Debug, Clone)]
pub enum Users {
    /// `{prefix}0` ... `{prefix}{count-1}`, all with `password`.
    Synthetic {
        prefix: String,
        count: u64,
        password: String,
    },
    /// Users read from a file.
    Listed(HashMap<String, String>),
}

/// The result of checking credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthResult {
    Accepted,
    UnknownUser,
    WrongPassword,
}

impl Users {
    /// Reads a users file: one `user:password` per line; blank lines and `#` comments
    /// are skipped. Errors name the line.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| anyhow::anyhow!("cannot read users file {}: {err}", path.display()))?;
        let mut users = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, password) = line.split_once(':').ok_or_else(|| {
                anyhow::anyhow!(
                    "{}:{}: expected user:password, found {line:?}",
                    path.display(),
                    number + 1
                )
            })?;
            users.insert(user.to_owned(), password.to_owned());
        }
        if users.is_empty() {
            anyhow::bail!("users file {} lists no user", path.display());
        }
        Ok(Self::Listed(users))
    }

    /// Whether this account exists.
    pub fn exists(&self, user: &str) -> bool {
        match self {
            Self::Synthetic { prefix, count, .. } => user
                .strip_prefix(prefix.as_str())
                .and_then(canonical_index)
                .is_some_and(|index| index < *count),
            Self::Listed(users) => users.contains_key(user),
        }
    }

    /// Checks a login.
    pub fn check(&self, user: &str, password: &str) -> AuthResult {
        let expected = match self {
            Self::Synthetic { password, .. } if self.exists(user) => password.as_str(),
            Self::Listed(users) => match users.get(user) {
                Some(password) => password.as_str(),
                None => return AuthResult::UnknownUser,
            },
            Self::Synthetic { .. } => return AuthResult::UnknownUser,
        };
        if same_secret(expected.as_bytes(), password.as_bytes()) {
            AuthResult::Accepted
        } else {
            AuthResult::WrongPassword
        }
    }
}

/// The index a synthetic user name's digits spell, only when they are its one spelling:
/// ASCII digits, no sign, no leading zero (`user+17`, `user017` are nobody).
fn canonical_index(digits: &str) -> Option<u64> {
    let canonical = !digits.is_empty()
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    canonical.then(|| digits.parse().ok()).flatten()
}

/// Compares a password in time that depends on its length only, not on where it first
/// differs.
fn same_secret(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len()
        && expected
            .iter()
            .zip(given)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_users() {
        let users = Users::Synthetic {
            prefix: "user".into(),
            count: 10,
            password: "pw".into(),
        };
        assert_eq!(users.check("user0", "pw"), AuthResult::Accepted);
        assert_eq!(users.check("user9", "pw"), AuthResult::Accepted);
        assert_eq!(users.check("user10", "pw"), AuthResult::UnknownUser);
        assert_eq!(users.check("user01", "pw"), AuthResult::UnknownUser);
        assert_eq!(users.check("bob", "pw"), AuthResult::UnknownUser);
        assert_eq!(users.check("user3", "nope"), AuthResult::WrongPassword);
        assert_eq!(users.check("user3", "pwx"), AuthResult::WrongPassword);
        // One name per user, byte for byte: no sign, no leading zeros, no spaces.
        for ghost in [
            "user+1",
            "user+0000001",
            "user-0",
            "user 1",
            "user1 ",
            "user",
            "user１",
        ] {
            assert_eq!(
                users.check(ghost, "pw"),
                AuthResult::UnknownUser,
                "{ghost:?}"
            );
            assert!(!users.exists(ghost), "{ghost:?}");
        }
    }

    #[test]
    fn users_file_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "# team\nalice:secret\n\nbob\n").unwrap();
        let err = Users::from_file(&path).unwrap_err().to_string();
        assert!(
            err.ends_with(":4: expected user:password, found \"bob\""),
            "{err}"
        );
        std::fs::write(&path, "alice:se:cret\n").unwrap();
        let users = Users::from_file(&path).unwrap();
        assert_eq!(users.check("alice", "se:cret"), AuthResult::Accepted);
    }
}
