//! `[capacity]`: the stepped capacity search that `pingfleet run` makes (see
//! `orchestrator::capacity`): the fleet at each step's device count, the scenario's
//! notification rate scaled with it (the same rate per device), each step judged by the
//! scenario's `[thresholds]`, until a step fails or a limit is reached.

/// The steps, and the limits that end the search before a step fails.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacitySection {
    /// The device counts to try, in order; or leave out and give `start` (and `factor`).
    #[serde(default)]
    pub steps: Vec<usize>,
    /// The first step's devices; each next step has `factor` times as many.
    #[serde(default)]
    pub start: Option<usize>,
    #[serde(default = "default_factor")]
    pub factor: f64,
    /// No step has more devices than this.
    #[serde(default = "default_max_devices")]
    pub max_devices: usize,
    /// Stop before a step whose memory, fitted over the steps so far, would exceed this
    /// many GiB (server, devices and kernel together). Default: what the machine has
    /// (a plan that does not fit it is refused anyway).
    #[serde(default)]
    pub max_memory_gib: Option<f64>,
    /// After the first step that fails, this many more steps, each halving the gap
    /// between the largest step that held and the smallest that failed (default 0).
    #[serde(default)]
    pub bisect: u32,
}

/// Most bisection steps after the first failure.
const MAX_BISECT: u32 = 8;

fn default_factor() -> f64 {
    2.0
}

fn default_max_devices() -> usize {
    1_000_000
}

/// Most steps in one search.
const MAX_STEPS: usize = 32;

impl CapacitySection {
    /// The device count of each step, in order.
    pub fn steps(&self) -> Vec<usize> {
        if !self.steps.is_empty() {
            return self.steps.clone();
        }
        let Some(start) = self.start else {
            return Vec::new();
        };
        let mut steps = Vec::new();
        let mut devices = start as f64;
        while devices.round() as usize <= self.max_devices && steps.len() < MAX_STEPS {
            steps.push(devices.round() as usize);
            devices *= self.factor;
        }
        steps
    }

    /// Whether the search can be made.
    pub fn check(&self) -> Result<(), CapacityError> {
        if self.steps.is_empty() == self.start.is_none() {
            return Err(CapacityError::StepsOrStart);
        }
        if self.start.is_some() && !(self.factor > 1.0 && self.factor <= 16.0) {
            return Err(CapacityError::Factor);
        }
        let steps = self.steps();
        if steps.is_empty() || steps.contains(&0) || steps.len() > MAX_STEPS {
            return Err(CapacityError::StepCount);
        }
        if steps.windows(2).any(|pair| pair[1] <= pair[0]) {
            return Err(CapacityError::NotGrowing);
        }
        if self.bisect > MAX_BISECT {
            return Err(CapacityError::Bisect);
        }
        if self
            .max_memory_gib
            .is_some_and(|gib| gib.is_nan() || gib <= 0.0)
        {
            return Err(CapacityError::MaxMemory);
        }
        Ok(())
    }
}

/// A `[capacity]` section that cannot search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CapacityError {
    #[error("capacity: give steps = [...] or start (and factor), one of them")]
    StepsOrStart,
    #[error("capacity.factor must be above 1 and at most 16")]
    Factor,
    #[error("capacity: 1 to {MAX_STEPS} steps of at least 1 device, at most max_devices")]
    StepCount,
    #[error("capacity.steps must grow from one step to the next")]
    NotGrowing,
    #[error("capacity.bisect must be 0 to {MAX_BISECT}")]
    Bisect,
    #[error("capacity.max_memory_gib must be above 0")]
    MaxMemory,
}

impl CapacityError {
    /// The key to point at, as a scenario writes it.
    pub fn key(self) -> &'static str {
        match self {
            Self::StepsOrStart | Self::StepCount | Self::NotGrowing => "steps",
            Self::Factor => "factor",
            Self::Bisect => "bisect",
            Self::MaxMemory => "max_memory_gib",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> CapacitySection {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn steps_are_listed_or_grow_geometrically_to_the_limit() {
        assert_eq!(section("steps = [100, 300]").steps(), [100, 300]);
        let geometric = section("start = 10000\nmax_devices = 100000");
        assert_eq!(geometric.steps(), [10_000, 20_000, 40_000, 80_000]);
        assert_eq!(geometric.check(), Ok(()));
        assert_eq!(
            section("start = 100\nfactor = 1.5\nmax_devices = 300").steps(),
            [100, 150, 225]
        );
    }

    #[test]
    fn a_section_that_cannot_search_names_its_key() {
        let cases = [
            ("", CapacityError::StepsOrStart, "steps"),
            (
                "steps = [1]\nstart = 5",
                CapacityError::StepsOrStart,
                "steps",
            ),
            ("steps = [200, 100]", CapacityError::NotGrowing, "steps"),
            ("steps = [0]", CapacityError::StepCount, "steps"),
            ("start = 10\nfactor = 1", CapacityError::Factor, "factor"),
            ("steps = [1]\nbisect = 9", CapacityError::Bisect, "bisect"),
            (
                "steps = [1]\nmax_memory_gib = 0",
                CapacityError::MaxMemory,
                "max_memory_gib",
            ),
        ];
        for (text, error, key) in cases {
            assert_eq!(section(text).check(), Err(error), "{text}");
            assert_eq!(error.key(), key);
        }
        let words = CapacityError::Bisect.to_string();
        assert_eq!(words, format!("capacity.bisect must be 0 to {MAX_BISECT}"));
        assert!(CapacityError::StepsOrStart
            .to_string()
            .contains("steps = [...] or start"));
    }
}
