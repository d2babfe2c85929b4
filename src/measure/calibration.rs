//! The machine's floor for a wake-up without EAS: a UDP datagram wakes a thread parked
//! on a loopback socket, which writes one byte on a parked TCP connection, which the
//! sender reads. Reported beside the wake-up latency, it shows how much of that latency
//! is the server and how much the machine; CI gates can use the ratio, which is steadier
//! than an absolute time on a shared machine.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::measure::latency::Latency;

/// Measures `samples` wake-ups spaced `gap` apart.
pub fn loopback_floor(samples: usize, gap: Duration) -> std::io::Result<Latency> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    let (mut server_side, _) = listener.accept()?;
    client.set_nodelay(true)?;
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
    let mut latency = Latency::default();
    let mut byte = [0u8; 1];
    for _ in 0..samples {
        std::thread::sleep(gap);
        let sent = Instant::now();
        sender.send(b"w")?;
        client.read_exact(&mut byte)?;
        latency.record(sent.elapsed());
    }
    sender.send(b"q")?;
    waker
        .join()
        .map_err(|_| std::io::Error::other("calibration thread panicked"))??;
    Ok(latency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_every_sample() {
        let latency = loopback_floor(50, Duration::from_micros(200)).unwrap();
        let summary = latency.summary();
        assert_eq!(summary.count, 50);
        assert!(summary.p50_us > 0 && summary.p50_us <= summary.max_us);
    }
}
