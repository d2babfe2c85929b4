//! The radio model against timelines worked out by hand from the published numbers
//! (each test's comment gives the arithmetic), not against the code's own output.

use std::time::{Duration, Instant};

use super::*;

/// What the tests read back: seconds up, joules, sessions, packets.
#[derive(Debug, Default)]
struct Spent {
    active_s: f64,
    joules: f64,
    sessions: u64,
    packets: u64,
}

impl RadioCounts for Spent {
    fn add_radio(&mut self, active_s: f64, joules: f64) {
        self.active_s += active_s;
        self.joules += joules;
    }
    fn add_session(&mut self) {
        self.sessions += 1;
    }
    fn add_packet(&mut self) {
        self.packets += 1;
    }
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

/// Uplink packets at `packets` seconds, the window settled at `end`.
fn run(model: &RadioModel, packets: &[f64], end: f64) -> Spent {
    let mut meter = RadioMeter::default();
    let mut spent = Spent::default();
    for t in packets {
        meter.packet(model, *t, Direction::Up, &mut spent);
    }
    meter.settle(model, end, &mut spent);
    spent
}

// The presets' numbers, written out from their sources (see `presets`), in W and s.
/// LTE idle: ARO lte.conf, 0.043 s at 0.594 W every 1.28 s.
const LTE_IDLE_W: f64 = 0.043 * 0.594 / 1.28; // 0.0199546875 W
/// LTE tail: 0.002 s at 1.68 W every 0.04 s, 1.06 W between.
const LTE_TAIL_W: f64 = (0.002 * 1.68 + 0.038 * 1.06) / 0.04; // 1.0910 W
const LTE_PROMOTION_S: f64 = 0.2601;
const LTE_PROMOTION_W: f64 = 1.2107;
const LTE_TAIL_S: f64 = 11.576;

#[test]
fn lte_packets_at_0_and_3_s_in_a_30_s_window() {
    // t = 0: idle, so a promotion 0 to 0.2601 s at 1.2107 W; the tail's timer starts
    // at 0.2601. t = 3: 2.7399 s into the tail: tail 0.2601 to 3, timer restarted at 3,
    // runs to 14.576 s, then idle until 30. Up: 0.2601 + 2.7399 + 11.576 = 14.576 s.
    // Above idle (0.01995 W): 0.2601 x (1.2107 - 0.01995) + 14.3159 x (1.0910 - 0.01995)
    // = 0.30971 + 15.33298 = 15.64269 J.
    let spent = run(&RadioModel::lte(), &[0.0, 3.0], 30.0);
    assert_eq!((spent.sessions, spent.packets), (1, 2));
    close(spent.active_s, 14.576);
    close(
        spent.joules,
        0.2601 * (1.2107 - LTE_IDLE_W) + (2.7399 + 11.576) * (LTE_TAIL_W - LTE_IDLE_W),
    );
    assert!(
        (spent.joules - 15.642_690_445).abs() < 1e-6,
        "{}",
        spent.joules
    );
}

#[test]
fn umts_packets_at_0_and_3_s_in_a_30_s_window() {
    // ARO 3G defaults. t = 0: idle, IDLE to DCH 0 to 2 s at 0.53 W; the DCH timer starts
    // at 2. t = 3: 1 s into DCH: DCH 2 to 3 at 0.7 W, timers restarted at 3: DCH to 8,
    // FACH 8 to 20 at 0.35 W, idle 20 to 30. Idle is ARO's 0 W.
    // Up: 2 + 1 + 5 + 12 = 20 s; 2 x 0.53 + 6 x 0.7 + 12 x 0.35 = 1.06 + 4.2 + 4.2
    // = 9.46 J.
    let spent = run(&RadioModel::umts(), &[0.0, 3.0], 30.0);
    assert_eq!((spent.sessions, spent.packets), (1, 2));
    close(spent.active_s, 20.0);
    close(spent.joules, 9.46);
}

#[test]
fn an_hour_of_push_with_an_8_minute_heartbeat() {
    // A Ping sent at 0; each answered 480 s later and the next sent 10 ms after the
    // answer, so the answers are at 480, 960, ..., 3360 s (the eighth Ping is still
    // parked at 3600). Each of the 8 exchanges (0 and the 7 answers) finds the radio
    // idle (480 s > 11.8361 s): a promotion, then the tail from its end; the Ping 10 ms
    // after an answer falls inside the promotion (0.2601 s) and adds nothing.
    // Up: 8 x (0.2601 + 11.576) = 94.6888 s. Above idle: 8 x (0.2601 x 1.19075 + 11.576
    // x 1.07105) = 8 x 12.70813 = 101.66507 J.
    let mut packets = vec![0.0];
    for k in 1..8 {
        let answer = 480.0 * f64::from(k);
        packets.extend([answer, answer + 0.01]);
    }
    let spent = run(&RadioModel::lte(), &packets, 3600.0);
    assert_eq!((spent.sessions, spent.packets), (8, 15));
    close(spent.active_s, 8.0 * (LTE_PROMOTION_S + LTE_TAIL_S));
    let session =
        LTE_PROMOTION_S * (LTE_PROMOTION_W - LTE_IDLE_W) + LTE_TAIL_S * (LTE_TAIL_W - LTE_IDLE_W);
    close(spent.joules, 8.0 * session);
    assert!(
        (spent.joules - 101.665_067).abs() < 1e-5,
        "{}",
        spent.joules
    );
}

#[test]
fn the_tail_starts_when_the_promotion_ends() {
    let lte = RadioModel::lte();
    // A packet at 10 s: promotion 10 to 10.2601, tail to 21.8361. A packet at 21.8 is
    // still inside it (one session); one at 21.84 is not (two).
    assert_eq!(run(&lte, &[10.0, 21.8], 100.0).sessions, 1);
    assert_eq!(run(&lte, &[10.0, 21.84], 100.0).sessions, 2);
    // A window cut at 11 s counts the promotion and 0.7399 s of tail, never both at
    // once: 0.2601 x 1.19075 + 0.7399 x 1.07105 W.
    close(
        run(&lte, &[10.0], 11.0).joules,
        0.2601 * (1.2107 - LTE_IDLE_W) + 0.7399 * (LTE_TAIL_W - LTE_IDLE_W),
    );
}

#[test]
fn settling_in_steps_counts_the_same_as_at_once() {
    let lte = RadioModel::lte();
    let mut meter = RadioMeter::default();
    let mut stepped = Spent::default();
    meter.packet(&lte, 10.0, Direction::Up, &mut stepped);
    for t in [10.1, 11.0, 15.5, 15.5, 21.0, 40.0] {
        meter.settle(&lte, t, &mut stepped);
    }
    close(stepped.joules, run(&lte, &[10.0], 40.0).joules);
}

#[test]
fn a_3g_packet_in_fach_is_promoted_back_to_dch_without_a_new_session() {
    // t = 0: promotion 0 to 2, DCH 2 to 7, FACH from 7. t = 9: 2 s into FACH: FACH to
    // DCH 9 to 10.5 at 0.55 W, then DCH 10.5 to 15.5, FACH 15.5 to 27.5.
    // First: 2 x 0.53 + 5 x 0.7 + 2 x 0.35 = 5.26 J; second: 1.5 x 0.55 + 5 x 0.7 + 12 x
    // 0.35 = 8.525 J. Up: 2 + 7 + 1.5 + 17 = 27.5 s.
    let umts = RadioModel::umts();
    let spent = run(&umts, &[0.0, 9.0], 1000.0);
    assert_eq!(spent.sessions, 1);
    close(spent.joules, 5.26 + 8.525);
    close(spent.active_s, 27.5);
    // After DCH and FACH have both run out (2 + 17 = 19 s), a new session.
    assert_eq!(run(&umts, &[0.0, 19.5], 1000.0).sessions, 2);
}

#[test]
fn the_radio_delays_a_wake_by_its_paging_wait_and_promotion() {
    let lte = RadioModel::lte();
    let mut spent = Spent::default();
    // Paging occasions at 0.25 x 1.28 = 0.32 s into each 1.28 s cycle: 0.32, 1.6,
    // 2.88, ... A downlink packet at 100 s (cycle 78 starts at 99.84) waits for
    // 99.84 + 0.32 = 100.16 s: 0.16 s, then the 0.2601 s promotion: 0.4201 s.
    let mut meter = RadioMeter::with_paging_phase(0.25);
    meter.packet(&lte, 100.0, Direction::Down, &mut spent);
    // Mail planned at 99 s (before the wake-up) waited all of it; planned at 100.3 s,
    // the 0.12 s left; planned once the radio was up, nothing.
    assert!((meter.delay_for(99.0) - 0.4201).abs() < 1e-9);
    assert!((meter.delay_for(100.3) - 0.1201).abs() < 1e-9);
    assert_eq!(meter.delay_for(100.5), 0.0);
    // Inside the tail nothing waits: a packet at 105 s wakes nothing.
    meter.packet(&lte, 105.0, Direction::Down, &mut spent);
    assert_eq!(meter.delay_for(104.0), 0.0);
    // Uplink from idle waits for the promotion only; 3G FACH to DCH, 1.5 s.
    let mut up = RadioMeter::with_paging_phase(0.25);
    up.packet(&lte, 100.0, Direction::Up, &mut spent);
    assert!((up.delay_for(0.0) - 0.2601).abs() < 1e-9);
    let umts = RadioModel::umts();
    let mut fach = RadioMeter::with_paging_phase(0.9);
    fach.packet(&umts, 0.0, Direction::Up, &mut spent);
    fach.packet(&umts, 9.0, Direction::Down, &mut spent);
    assert!((fach.delay_for(8.0) - 1.5).abs() < 1e-9);
    // Downlink to an idle 3G phone: phase 0.9 of 5.12 s = 4.608 s; at 100 s (cycle 19
    // starts at 97.28) the occasion is 101.888: 1.888 s, then 2 s of promotion.
    let mut idle = RadioMeter::with_paging_phase(0.9);
    idle.packet(&umts, 100.0, Direction::Down, &mut spent);
    assert!((idle.delay_for(0.0) - 3.888).abs() < 1e-9);
}

#[test]
fn the_clock_runs_at_the_scale_while_waiting_and_at_real_speed_in_an_exchange() {
    let start = Instant::now();
    let mut clock = SimClock::new(start);
    // 1 s of waiting at scale 60, then 10 ms of exchange.
    close(clock.advance(start + Duration::from_secs(1), 60.0), 60.0);
    let t = clock.advance(start + Duration::from_millis(1010), 1.0);
    assert!((t - 60.01).abs() < 1e-6, "{t}");
    assert!((clock.at(start + Duration::from_millis(1020), 60.0) - 60.61).abs() < 1e-6);
}

#[test]
fn the_presets_are_their_sources_numbers() {
    let lte = RadioKind::Lte.model();
    let tail = |model: &RadioModel| -> Duration { model.tail.iter().map(|s| s.timer).sum() };
    assert_eq!(tail(&lte), Duration::from_millis(11_576));
    assert!((lte.tail[0].mw - 1091.0).abs() < 1e-9);
    assert!((lte.idle_mw - 19.954_687_5).abs() < 1e-9);
    assert_eq!(lte.paging_cycle, Duration::from_millis(1280));
    let umts = RadioKind::Umts.model();
    assert_eq!(tail(&umts), Duration::from_secs(17));
    assert_eq!((umts.promotion_mw, umts.repromotion_mw), (530.0, 550.0));
    assert_eq!((umts.tail[0].mw, umts.tail[1].mw), (700.0, 350.0));
}
