//! The machine's floor for a wake-up without EAS: a UDP datagram wakes a thread parked
//! on a loopback socket, which writes one byte on a parked TCP connection, which the
//! sender reads. Reported beside the wake-up latency, it shows how much of that latency
//! is the server and how much the machine; CI gates can use the ratio, which is steadier
//! than an absolute time on a shared machine.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::intervals::{IntervalDoc, IntervalRecorder};
use crate::measure::latency::Latency;

/// The tag of the floor's seconds in an interval log.
pub(crate) const FLOOR_TAG: &str = "floor";

/// The longest one floor sample may take; beyond it the probe stops with an error.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);

/// A parked loopback connection and the thread a datagram wakes to write on it.
struct FloorRig {
    sender: UdpSocket,
    client: TcpStream,
    waker: Option<JoinHandle<std::io::Result<()>>>,
}

impl FloorRig {
    fn new() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let client = TcpStream::connect(listener.local_addr()?)?;
        let (mut server_side, _) = listener.accept()?;
        client.set_nodelay(true)?;
        // A wake-up that never comes (a datagram lost on a machine in trouble) ends
        // the probe with an error instead of holding the run's end forever.
        client.set_read_timeout(Some(SAMPLE_TIMEOUT))?;
        server_side.set_nodelay(true)?;
        let receiver = UdpSocket::bind("127.0.0.1:0")?;
        let sender = UdpSocket::bind("127.0.0.1:0")?;
        sender.connect(receiver.local_addr()?)?;
        let waker = std::thread::spawn(move || -> std::io::Result<()> {
            let mut datagram = [0u8; 16];
            loop {
                let len = receiver.recv(&mut datagram)?;
                if len == 0 || datagram[0] == b'q' {
                    return Ok(());
                }
                server_side.write_all(b"!")?;
            }
        });
        Ok(Self {
            sender,
            client,
            waker: Some(waker),
        })
    }

    /// One wake-up: from the datagram's sending to the byte read.
    fn sample(&mut self) -> std::io::Result<Duration> {
        let mut byte = [0u8; 1];
        let sent = Instant::now();
        self.sender.send(b"w")?;
        self.client.read_exact(&mut byte)?;
        Ok(sent.elapsed())
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.sender.send(b"q")?;
        match self.waker.take().map(JoinHandle::join) {
            Some(Ok(done)) => done,
            Some(Err(_)) => Err(std::io::Error::other("calibration thread panicked")),
            None => Ok(()),
        }
    }
}

/// Measures `samples` wake-ups spaced `gap` apart.
pub(crate) fn loopback_floor(samples: usize, gap: Duration) -> std::io::Result<Latency> {
    let mut rig = FloorRig::new()?;
    let mut latency = Latency::default();
    for _ in 0..samples {
        std::thread::sleep(gap);
        latency.record(rig.sample()?);
    }
    rig.finish()?;
    Ok(latency)
}

/// The floor measured on a thread of its own while a run goes on, a sample every `gap`
/// (interleaved with the run's own wake-ups, so the two are taken in the same moments
/// of a shared machine), second by second.
pub(crate) struct FloorProbe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<std::io::Result<IntervalRecorder>>,
}

impl FloorProbe {
    pub(crate) fn start(gap: Duration) -> std::io::Result<Self> {
        let mut rig = FloorRig::new()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seconds = IntervalRecorder::default();
            while !stopping.load(Ordering::Relaxed) {
                std::thread::sleep(gap);
                let sample = rig.sample()?;
                seconds.tick(std::time::SystemTime::now());
                seconds.record(FLOOR_TAG, sample);
            }
            seconds.close();
            rig.finish()?;
            Ok(seconds)
        });
        Ok(Self { stop, thread })
    }

    /// Stops the probe; its seconds, tagged [`FLOOR_TAG`].
    pub(crate) fn stop(self) -> std::io::Result<Vec<IntervalDoc>> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(seconds) => Ok(seconds?.intervals),
            Err(_) => Err(std::io::Error::other("floor probe panicked")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_measures_second_by_second_until_stopped() {
        let probe = FloorProbe::start(Duration::from_millis(5)).unwrap();
        std::thread::sleep(Duration::from_millis(1_200));
        let seconds = probe.stop().unwrap();
        assert!(!seconds.is_empty() && seconds.iter().all(|doc| doc.tag == FLOOR_TAG));
        let count: u64 = seconds
            .iter()
            .map(|doc| Latency::from_base64(&doc.data).unwrap().histogram().len())
            .sum();
        // One sample per 5 ms (and its own duration): at most 240 in 1.2 s.
        assert!((50..=240).contains(&count), "{count}");
    }

    #[test]
    fn measures_every_sample() {
        let latency = loopback_floor(50, Duration::from_micros(200)).unwrap();
        let summary = latency.summary();
        assert_eq!(summary.count, 50);
        assert!(summary.p50_us > 0 && summary.p50_us <= summary.max_us);
    }
}
