//! What a scenario's types cannot check: each key's range, the tables that exclude
//! each other, the heartbeats within the server's bounds, the thresholds' units. Each
//! error names the key (or profile entry) to point at.

use std::time::Duration;

use super::place::Place;
use super::sections::TargetSection;
use super::sweep::SweepSection;
use super::Scenario;
use crate::firewall::config::FirewallConfig;
use crate::server::config::ServerConfig;

/// A key to point at, and what is wrong there.
type KeyError = (&'static str, String);

impl Scenario {
    /// Checks what the types cannot: returns where to point and the message.
    pub(crate) fn check(&self) -> Result<(), (Place, String)> {
        self.check_fields()
            .map_err(|(key, message)| (Place::Key(key), message))?;
        for (index, profile) in self.devices.profiles.iter().enumerate() {
            let heartbeat = profile.heartbeat.unwrap_or(self.devices.heartbeat.0);
            let problem = profile.problem().or_else(|| {
                self.heartbeat_outside_bounds(heartbeat)
                    .map(|message| format!("profile {:?}: {message}", profile.name))
            });
            if let Some(message) = problem {
                return Err((Place::Profile(index), message));
            }
        }
        for (metric, conditions) in &self.thresholds {
            if let Some(message) = conditions
                .iter()
                .find_map(|condition| condition.0.misfit(metric.kind()))
            {
                let message = format!("thresholds.{}: {message}", metric.name());
                return Err((Place::Key(metric.name()), message));
            }
        }
        Ok(())
    }

    /// Why a heartbeat is outside the bundled server's bounds, if it is (an external
    /// server's bounds are its own: it answers Status 5 and the device adapts).
    fn heartbeat_outside_bounds(&self, heartbeat: Duration) -> Option<String> {
        if self.target.is_some() {
            return None;
        }
        let (min, max) = (self.server.min_heartbeat.0, self.server.max_heartbeat.0);
        (heartbeat < min || heartbeat > max).then(|| {
            format!(
                "heartbeat {} is outside the server's bounds {}..{}",
                humantime::format_duration(heartbeat),
                humantime::format_duration(min),
                humantime::format_duration(max)
            )
        })
    }

    /// Checks of a `[target]` table: returns the key to point at and the message.
    fn check_target(&self, target: &TargetSection) -> Result<(), KeyError> {
        if self.server != ServerConfig::default() {
            return Err((
                "url",
                "a scenario with [target] runs no bundled server: remove its [server] table".into(),
            ));
        }
        crate::fleet::target::Target::parse(&target.url)
            .map_err(|err| ("url", format!("target.url: {err}")))?;
        for url in &target.inject {
            crate::fleet::sink::check_inject_url(url)
                .map_err(|err| ("inject", format!("target.{err}")))?;
        }
        if self.injector.rate > 0.0 && target.inject.is_empty() {
            return Err((
                "rate",
                "injector.rate needs target.inject: an external server learns of changes only from \
                 its mail store (or set injector.rate = 0 to measure parking alone)"
                    .into(),
            ));
        }
        if target.url.starts_with("https") && target.ca.is_none() && !target.insecure {
            return Err((
                "url",
                "an https target needs target.ca (its certificate's issuer) or insecure = true"
                    .into(),
            ));
        }
        if !target.server_pid.is_empty() && target.server_cgroup.is_some() {
            return Err((
                "server_pid",
                "give target.server_pid or target.server_cgroup, not both".into(),
            ));
        }
        Ok(())
    }

    /// Checks of single keys: returns the key to point at and the message.
    fn check_fields(&self) -> Result<(), KeyError> {
        if !(1.0..=3600.0).contains(&self.time_scale) {
            return Err((
                "time_scale",
                "time_scale must be 1 (real time) to 3600".into(),
            ));
        }
        if let Some(target) = &self.target {
            self.check_target(target)?;
        }
        if let Some(problem) = self.compare.as_ref().and_then(|c| c.problem()) {
            return Err(("alpha", problem));
        }
        if let Some(sweep) = &self.sweep {
            self.check_sweep(sweep)?;
        }
        if let Some(capacity) = &self.capacity {
            if let Some((key, problem)) = capacity.problem() {
                return Err((key, problem));
            }
            if self.sweep.is_some() || self.server.compare_engines {
                return Err((
                    "steps",
                    "a [capacity] search measures one engine, without a [sweep]".into(),
                ));
            }
        }
        if !self.variants.is_empty() {
            if let Some(problem) = super::variants::problem(&self.variants) {
                return Err(problem);
            }
            if self.sweep.is_some() || self.capacity.is_some() || self.server.compare_engines {
                return Err((
                    "variants",
                    "[[variants]] are runs of their own: not with a [sweep], a [capacity] search or compare_engines".into(),
                ));
            }
        }
        if let Some(firewall) = &self.firewall {
            self.check_firewall(firewall)?;
        }
        self.devices.check().map_err(|err| (err.key, err.message))?;
        self.check_server()?;
        self.check_stages_and_injector()
    }

    /// A `[sweep]`: a valid grid, behind a firewall, judged by no thresholds.
    fn check_sweep(&self, sweep: &SweepSection) -> Result<(), KeyError> {
        if let Some(problem) = sweep.problem() {
            return Err(("heartbeat_strategy", problem));
        }
        if !self.thresholds.is_empty() {
            return Err((
                "heartbeat_strategy",
                "a [sweep] judges no [thresholds]: each cell is read from the grid (remove them)"
                    .into(),
            ));
        }
        if self.firewall.is_none() || self.server.compare_engines {
            return Err((
                "idle_timeout",
                "a [sweep] needs a [firewall] (its idle_timeout is swept) and one engine".into(),
            ));
        }
        Ok(())
    }

    /// A `[firewall]`: its own checks, a flush within the hold, no external target.
    fn check_firewall(&self, firewall: &FirewallConfig) -> Result<(), KeyError> {
        firewall.check().map_err(|err| (err.key, err.message))?;
        if firewall
            .flush_at
            .is_some_and(|at| at.0 >= self.stages.hold.0)
        {
            return Err((
                "flush_at",
                "firewall.flush_at must fall within the hold".into(),
            ));
        }
        if self.target.is_some() {
            return Err((
                "idle_timeout",
                "a [firewall] stands before the bundled server; with a [target], put \
                 `pingfleet firewall` before your server by hand"
                    .into(),
            ));
        }
        Ok(())
    }

    /// `[server]`: its own checks, and heartbeat bounds that hold the devices'.
    fn check_server(&self) -> Result<(), KeyError> {
        self.server.check().map_err(|err| (err.key, err.message))?;
        if let Some(message) = self.heartbeat_outside_bounds(self.devices.heartbeat.0) {
            return Err(("heartbeat", format!("devices.{message}")));
        }
        Ok(())
    }

    /// `[stages]` and `[injector]`: their own checks.
    fn check_stages_and_injector(&self) -> Result<(), KeyError> {
        self.stages
            .check()
            .and_then(|()| self.injector.check())
            .map_err(|err| (err.key, err.message))
    }
}
