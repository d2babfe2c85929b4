//! How a device learns of new mail. Direct Push (`push`: a parked Ping the server
//! answers when mail arrives) is what pingfleet measures by default; the two ways that
//! came before it are here to measure it against: `scheduled` (a Sync of the pushed
//! folders every interval, never sooner than a minimum, as clients enforced) and `sms`
//! (Always Up-To-Date: no connection is held; for each new mail the server mails an
//! operator's SMTP-to-SMS gateway, which texts the phone after a delay, or loses the
//! text; the phone then connects, syncs the folder and disconnects). The gateway is
//! simulated here, seeded, so a run can be repeated text for text.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};

use crate::seeds::{self, Stream};

/// How a kind of device learns of new mail (a scenario's `delivery`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    /// Direct Push: a Ping parked at the server for a heartbeat.
    #[default]
    Push,
    /// A Sync of the pushed folders every `sync_interval`.
    Scheduled,
    /// Always Up-To-Date: woken by an SMS from the operator's gateway.
    Sms,
}

/// Whether a scheduled device keeps its connection between syncs.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SyncConnection {
    /// A new connection (and TLS handshake) for each sync, closed after it.
    #[default]
    New,
    /// One connection kept open between syncs (a new one if it was cut meanwhile).
    Kept,
}

/// A device's delivery, resolved from its kind's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Push,
    /// Syncs every `interval` (already no shorter than the kind's minimum).
    Scheduled {
        interval: Duration,
        connection: SyncConnection,
    },
    Sms,
}

impl Delivery {
    /// From a kind's settings: `interval` is raised to `min_interval` if below it.
    pub fn new(
        mode: DeliveryMode,
        interval: Duration,
        min_interval: Duration,
        connection: SyncConnection,
    ) -> Self {
        match mode {
            DeliveryMode::Push => Self::Push,
            DeliveryMode::Scheduled => Self::Scheduled {
                interval: interval.max(min_interval),
                connection,
            },
            DeliveryMode::Sms => Self::Sms,
        }
    }
}

/// The simulated SMTP-to-SMS gateway: each text's fate depends only on the run's seed
/// and the notification's sequence number, so every worker count sends the same.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmsGateway {
    /// Delays are log-normal around this median...
    pub median: Duration,
    /// ...with this spread (the standard deviation of the delay's logarithm)...
    pub spread: f64,
    /// ...and never longer than this.
    pub max: Duration,
    /// The share of texts lost.
    pub loss: f64,
    pub run_seed: u64,
}

impl SmsGateway {
    /// How long after it was asked the text for notification `seq` reaches the phone,
    /// or `None` if the gateway loses it.
    pub fn text(&self, seq: u64) -> Option<Duration> {
        let mut rng =
            rand::rngs::SmallRng::seed_from_u64(seeds::derive(self.run_seed, Stream::Sms, seq));
        if rng.random::<f64>() < self.loss {
            return None;
        }
        let median_s = self.median.as_secs_f64().max(1e-9);
        let delay_s = LogNormal::new(median_s.ln(), self.spread.max(0.0))
            .map_or(median_s, |distribution| distribution.sample(&mut rng));
        // A delay past what a Duration holds is the longest one.
        Some(Duration::try_from_secs_f64(delay_s).map_or(self.max, |delay| delay.min(self.max)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(loss: f64) -> SmsGateway {
        SmsGateway {
            median: Duration::from_secs(10),
            spread: 1.0,
            max: Duration::from_secs(600),
            loss,
            run_seed: 7,
        }
    }

    #[test]
    fn texts_follow_the_seed_the_median_and_the_loss() {
        let gateway = gateway(0.1);
        let texts: Vec<Option<Duration>> = (0..20_000).map(|seq| gateway.text(seq)).collect();
        assert_eq!(
            texts,
            (0..20_000).map(|seq| gateway.text(seq)).collect::<Vec<_>>()
        );
        let lost = texts.iter().filter(|text| text.is_none()).count() as f64 / 20_000.0;
        assert!((lost - 0.1).abs() < 0.01, "{lost}");
        let mut delays: Vec<Duration> = texts.into_iter().flatten().collect();
        delays.sort();
        let median = delays[delays.len() / 2].as_secs_f64();
        assert!((median - 10.0).abs() < 0.5, "{median}");
        assert!(delays
            .iter()
            .all(|delay| *delay <= Duration::from_secs(600)));
        let sure = SmsGateway {
            loss: 0.0,
            ..gateway
        };
        assert_ne!(
            sure.text(1),
            SmsGateway {
                run_seed: 8,
                ..sure
            }
            .text(1)
        );
    }

    #[test]
    fn a_scheduled_interval_is_never_below_its_minimum() {
        let five = Duration::from_secs(300);
        let scheduled = Delivery::new(
            DeliveryMode::Scheduled,
            Duration::from_secs(60),
            five,
            SyncConnection::New,
        );
        assert_eq!(
            scheduled,
            Delivery::Scheduled {
                interval: five,
                connection: SyncConnection::New
            }
        );
        assert_eq!(
            Delivery::new(DeliveryMode::Push, five, five, SyncConnection::Kept),
            Delivery::Push
        );
    }
}
