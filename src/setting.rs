//! A setting that does not hold, said where it was written: a scenario points at the
//! key (with its file, line and column), a command line names the flag.

/// A setting that does not hold: its key (as a scenario writes it), its flag when that
/// is not the key with dashes (`count` is `--devices`), and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: &'static str,
    pub flag: Option<&'static str>,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            flag: None,
            message: message.into(),
        }
    }

    /// The flag that sets this key, when it is not the key with dashes.
    pub fn flag(self, flag: &'static str) -> Self {
        Self {
            flag: Some(flag),
            ..self
        }
    }

    /// The message as a command line says it, naming the flag.
    pub fn for_flag(&self) -> String {
        let flag = self
            .flag
            .map_or_else(|| self.key.replace('_', "-"), str::to_owned);
        format!("--{flag}: {}", self.message)
    }
}
