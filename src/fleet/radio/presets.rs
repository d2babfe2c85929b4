//! The radio presets, every number with where it was published. Two sources:
//!
//! - Huang et al., "A Close Examination of Performance and Power Characteristics of 4G
//!   LTE Networks", MobiSys 2012, Table 3 (the LTE power model: promotion, the
//!   RRC_CONNECTED tail's base power and timer).
//! - AT&T's Application Resource Optimizer (ARO, now VideoOptimizer; the tool built on
//!   the same authors' models), whose defaults can be read in its source: the LTE
//!   profile `ARO.Core/src/main/resources/lte.conf` (DRX on-durations, cycles and
//!   powers, and the idle radio's paging) and the 3G profile's defaults in
//!   `ARO.Core/src/main/java/com/att/aro/core/configuration/impl/ProfileFactoryImpl.java`
//!   (`create3G`: timers, promotion times and every 3G power).

use std::time::Duration;

use super::{RadioModel, TailStage};

/// LTE's idle radio, averaged over its paging (idle DRX) cycle: ARO `lte.conf`,
/// `T_IDLE_PING = 0.043` s at `P_IDLE_PING = 0.594` W every `T_IDLE_PING_PERIOD =
/// 1.28` s, `P_IDLE = 0` between: 43 ms x 594 mW / 1280 ms = 19.9546875 mW.
pub(super) const LTE_IDLE_MW: f64 = 43.0 * 594.0 / 1280.0;

/// LTE's RRC_CONNECTED tail averaged over its long DRX cycle: the tail's base power
/// (Huang Table 3: 1060.0 mW, ARO `P_TAIL = 1.06`) with the receiver on for
/// `T_DRX_PING = 0.002` s at `P_LONG_DRX_PING = 1.68` W every
/// `T_LONG_DRX_PING_PERIOD = 0.04` s (ARO `lte.conf`; ARO's energy function averages a
/// DRX period the same way): (2 x 1680 + 38 x 1060) / 40 = 1091.0 mW.
pub(super) const LTE_TAIL_MW: f64 = (2.0 * 1680.0 + 38.0 * 1060.0) / 40.0;

impl RadioModel {
    /// LTE: promotion 260.1 ms at 1210.7 mW and the RRC_CONNECTED tail timer 11,576 ms
    /// (Huang et al. Table 3); the tail at its DRX average [`LTE_TAIL_MW`] (1091.0 mW,
    /// not Table 3's 1060.0 mW, which is the base the DRX on-durations sit on); the
    /// idle radio's paging average [`LTE_IDLE_MW`] (19.95 mW) and its paging cycle,
    /// 1.28 s (ARO `lte.conf`).
    ///
    /// The tail's first 100 ms (continuous reception before DRX, ARO
    /// `INACTIVITY_TIMER = 0.1` at `LTE_BETA = 1.2` W) and 20 ms of short DRX are
    /// counted at the long-DRX average too: at most 0.12 s x (1.2 - 1.091) W = 13 mJ a
    /// tail, 0.1% of one.
    pub fn lte() -> Self {
        Self {
            name: "lte",
            promotion: Duration::from_micros(260_100),
            promotion_mw: 1210.7,
            tail: vec![TailStage {
                name: "connected (DRX)",
                timer: Duration::from_millis(11_576),
                mw: LTE_TAIL_MW,
            }],
            repromotion: Duration::ZERO,
            repromotion_mw: 0.0,
            idle_mw: LTE_IDLE_MW,
            paging_cycle: Duration::from_millis(1280),
        }
    }

    /// UMTS (3G), ARO's 3G defaults (`ProfileFactoryImpl.create3G`): IDLE to DCH
    /// `IDLE_DCH_PROMO_AVG = 2.0` s at `POWER_IDLE_DCH = 0.53` W; FACH to DCH
    /// `FACH_DCH_PROMO_AVG = 1.5` s at `POWER_FACH_DCH = 0.55` W; DCH `POWER_DCH = 0.7`
    /// W until `DCH_FACH_TIMER = 5` s, then FACH `POWER_FACH = 0.35` W until
    /// `FACH_IDLE_TIMER = 12` s; `POWER_IDLE = 0`, so these powers are already above
    /// the idle radio (its paging is not in the profile: nothing is subtracted). The
    /// timers are those Qian et al. measured for their Carrier 1 ("Characterizing
    /// Radio Resource Allocation for 3G Networks", IMC 2010).
    ///
    /// The paging cycle: UMTS's idle DRX cycle is a network setting of 2^k radio frames,
    /// 0.08 to 5.12 s (3GPP TS 25.331 §8.5.42 and TS 25.304); the preset takes the
    /// longest, 5.12 s, so the 3G paging wait is an upper bound (mean 2.56 s).
    pub fn umts() -> Self {
        Self {
            name: "umts",
            promotion: Duration::from_secs(2),
            promotion_mw: 530.0,
            tail: vec![
                TailStage {
                    name: "DCH",
                    timer: Duration::from_secs(5),
                    mw: 700.0,
                },
                TailStage {
                    name: "FACH",
                    timer: Duration::from_secs(12),
                    mw: 350.0,
                },
            ],
            repromotion: Duration::from_millis(1500),
            repromotion_mw: 550.0,
            idle_mw: 0.0,
            paging_cycle: Duration::from_millis(5120),
        }
    }
}
