//! The phases of a run, as workers count them and the orchestrator names them in its
//! timeline and results: the ramp (devices connect and park), the hold (everything
//! parked, notifications injected, measured), the drain (injection over, the last
//! notifications awaited).

use std::fmt;

/// One phase of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Ramp,
    Hold,
    Drain,
}

impl Phase {
    /// Every phase, in the order a run goes through them.
    pub const ALL: [Phase; 3] = [Phase::Ramp, Phase::Hold, Phase::Drain];

    pub fn name(self) -> &'static str {
        match self {
            Self::Ramp => "ramp",
            Self::Hold => "hold",
            Self::Drain => "drain",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
