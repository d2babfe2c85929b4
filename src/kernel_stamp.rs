//! Datagrams with the instant the kernel received them (`SO_TIMESTAMPNS`), so a latency
//! that starts "when the datagram arrived" starts there, not when a busy thread got
//! round to reading it: the socket's queue and the reader's own wake-up are then inside
//! the figure, as they are inside the time a packet capture sees.
//!
//! The kernel stamps with the wall clock; the stamp is turned into an [`Instant`] by its
//! age (wall clock now minus the stamp) taken away from the monotonic clock now, so the
//! rest of the program keeps measuring with `Instant`.

use std::io;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    self, sockopt, ControlMessageOwned, MsgFlags, MultiHeaders, TimestampingFlag, Timestamps,
};
use nix::sys::time::TimeSpec;

/// The oldest a stamp may be and still be believed: beyond it the wall clock was
/// stepped between the stamp and the read (a datagram does not wait a minute in a
/// socket's queue), and the read's own instant is used.
const OLDEST_BELIEVED: Duration = Duration::from_secs(60);

/// Asks the kernel to stamp everything `socket` receives (datagrams, or for TCP the
/// segments each read takes bytes from).
pub(crate) fn enable(socket: &impl AsFd) -> io::Result<()> {
    socket::setsockopt(socket, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)
}

/// Asks the kernel to stamp (`on`), or no longer, each send on `socket` as it leaves the
/// network stack for the device (its software transmit stamp), for [`sent_at`] to read.
pub(crate) fn stamp_transmits(socket: &impl AsFd, on: bool) -> io::Result<()> {
    let flags = match on {
        true => {
            TimestampingFlag::SOF_TIMESTAMPING_TX_SOFTWARE
                | TimestampingFlag::SOF_TIMESTAMPING_SOFTWARE
                | TimestampingFlag::SOF_TIMESTAMPING_OPT_TSONLY
        }
        false => TimestampingFlag::empty(),
    };
    socket::setsockopt(socket, sockopt::Timestamping, &flags).map_err(io::Error::from)
}

/// When the kernel received the datagram at the head of `socket`'s queue, without
/// taking it (a peek); `None` when the queue is empty or the datagram has no stamp.
pub(crate) fn oldest_queued(socket: &impl AsRawFd) -> Option<Instant> {
    let mut byte = [0u8; 1];
    match recv_stamped(
        socket,
        &mut byte,
        MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
    ) {
        Ok((_, stamp)) => stamp,
        Err(_) => None,
    }
}

/// Room for a batch of datagrams read with one `recvmmsg`: the buffers, allocated once
/// and reused (the system call's headers hold raw pointers, so they are made per read
/// and the batch can move between a runtime's threads).
pub(crate) struct Batch {
    buffers: Vec<Vec<u8>>,
    /// Each datagram of the last read: its length and when the kernel received it.
    received: Vec<(usize, Instant)>,
}

impl Batch {
    /// Room for `count` datagrams of up to `bytes` each.
    pub(crate) fn new(count: usize, bytes: usize) -> Self {
        Self {
            buffers: vec![vec![0u8; bytes]; count],
            received: Vec::with_capacity(count),
        }
    }

    /// Reads what `socket` (non-blocking) has queued, up to the batch's room, in one
    /// system call; `WouldBlock` when nothing is queued. Then [`Batch::datagrams`].
    pub(crate) fn read(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        self.received.clear();
        let mut headers: MultiHeaders<()> =
            MultiHeaders::preallocate(self.buffers.len(), Some(nix::cmsg_space!(TimeSpec)));
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = self
            .buffers
            .iter_mut()
            .map(|buffer| [IoSliceMut::new(buffer)])
            .collect();
        let results = socket::recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        let (now_wall, now) = (SystemTime::now(), Instant::now());
        for message in results {
            let stamp = message.cmsgs().ok().and_then(|mut cmsgs| {
                cmsgs.find_map(|cmsg| match cmsg {
                    ControlMessageOwned::ScmTimestampns(stamp) => Some(stamp),
                    _ => None,
                })
            });
            let received_at = stamp.map_or(now, |stamp| instant_of(stamp, now_wall, now));
            self.received.push((message.bytes, received_at));
        }
        Ok(self.received.len())
    }

    /// The datagrams of the last read: their bytes and when each arrived (the read's
    /// own instant for one that came without a stamp).
    pub(crate) fn datagrams(&self) -> impl Iterator<Item = (&[u8], Instant)> {
        self.received
            .iter()
            .zip(&self.buffers)
            .map(|((len, at), buffer)| (&buffer[..*len], *at))
    }
}

/// One `recvmsg` on a non-blocking `socket`: the bytes read and, if the kernel stamped
/// them, when it received them (for TCP: the last segment the read took bytes from).
pub(crate) fn read(
    socket: &impl AsRawFd,
    buffer: &mut [u8],
) -> io::Result<(usize, Option<Instant>)> {
    recv_stamped(socket, buffer, MsgFlags::empty())
}

/// When the kernel sent what `socket` sent last, from its error queue (which
/// this drains); `None` when there is no stamp, or only stamps older than `not_before`
/// (a device that stamps after the send returned: those are not this datagram's).
pub(crate) fn sent_at(socket: &impl AsRawFd, not_before: Instant) -> Option<Instant> {
    sent_each(socket, not_before, 1)[0]
}

/// When the kernel sent each of the last `count` datagrams `socket` sent (with one
/// `sendmmsg`), in the order they were sent, from its error queue (which this drains);
/// a datagram without a stamp, or whose stamp is older than `not_before`, has `None`.
pub(crate) fn sent_each(
    socket: &impl AsRawFd,
    not_before: Instant,
    count: usize,
) -> Vec<Option<Instant>> {
    if count == 0 {
        return Vec::new();
    }
    let mut stamps = std::collections::VecDeque::with_capacity(count);
    // Bounded: the queue holds a stamp per datagram sent, and this runs after each send.
    let mut control = nix::cmsg_space!(Timestamps, ErrorHeader);
    for _ in 0..count + 16 {
        let message = match socket::recvmsg::<()>(
            socket.as_raw_fd(),
            &mut [],
            Some(&mut control),
            MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(message) => message,
            Err(_) => break,
        };
        let stamp = message.cmsgs().ok().and_then(|mut cmsgs| {
            cmsgs.find_map(|cmsg| match cmsg {
                ControlMessageOwned::ScmTimestampsns(stamps) => Some(stamps.system),
                _ => None,
            })
        });
        if let Some(stamp) = stamp {
            if stamps.len() == count {
                stamps.pop_front();
            }
            stamps.push_back(instant_of(stamp, SystemTime::now(), Instant::now()));
        }
    }
    // Stamps missing are the first datagrams': the queue is read oldest first.
    let missing = count - stamps.len();
    let believed = stamps
        .into_iter()
        .map(|sent| Some(sent).filter(|sent| *sent >= not_before));
    std::iter::repeat_n(None, missing).chain(believed).collect()
}

/// The room the error queue's own control message takes beside the stamp (a
/// `sock_extended_err` and the offender's `sockaddr_in6`, at most).
type ErrorHeader = [u32; 12];

fn recv_stamped(
    socket: &impl AsRawFd,
    buffer: &mut [u8],
    flags: MsgFlags,
) -> io::Result<(usize, Option<Instant>)> {
    let mut control = nix::cmsg_space!(TimeSpec);
    let mut iov = [IoSliceMut::new(buffer)];
    let message = socket::recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut control), flags)
        .map_err(io::Error::from)?;
    let stamp = message.cmsgs().ok().and_then(|mut cmsgs| {
        cmsgs.find_map(|cmsg| match cmsg {
            ControlMessageOwned::ScmTimestampns(stamp) => Some(stamp),
            _ => None,
        })
    });
    let received_at = stamp.map(|stamp| instant_of(stamp, SystemTime::now(), Instant::now()));
    Ok((message.bytes, received_at))
}

/// The monotonic instant of a wall-clock `stamp`, given the wall clock and the
/// monotonic clock read together (`now_wall`, `now`).
fn instant_of(stamp: TimeSpec, now_wall: SystemTime, now: Instant) -> Instant {
    let (Ok(secs), Ok(nanos)) = (
        u64::try_from(stamp.tv_sec()),
        u32::try_from(stamp.tv_nsec()),
    ) else {
        return now;
    };
    let stamped = UNIX_EPOCH + Duration::new(secs, nanos);
    match now_wall.duration_since(stamped) {
        Ok(age) if age <= OLDEST_BELIEVED => now.checked_sub(age).unwrap_or(now),
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_becomes_an_instant_as_old_as_the_datagram() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let stamp = TimeSpec::new(1_799_999_999, 999_000_000);
        assert_eq!(instant_of(stamp, wall, now), now - Duration::from_millis(1));
    }

    #[test]
    fn a_stamp_from_the_future_or_of_a_stepped_clock_is_not_believed() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let ahead = TimeSpec::new(1_800_000_001, 0);
        assert_eq!(instant_of(ahead, wall, now), now);
        let stepped = TimeSpec::new(1_799_999_000, 0);
        assert_eq!(instant_of(stepped, wall, now), now);
        let negative = TimeSpec::new(-1, 0);
        assert_eq!(instant_of(negative, wall, now), now);
    }

    #[test]
    fn a_batch_reads_every_queued_datagram_at_once_with_its_bytes() {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        enable(&receiver).unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = Batch::new(4, 64);
        let nothing = batch.read(&receiver).unwrap_err();
        assert_eq!(nothing.kind(), io::ErrorKind::WouldBlock);
        let before = Instant::now();
        for text in ["one", "two", "three", "four", "five"] {
            sender
                .send_to(text.as_bytes(), receiver.local_addr().unwrap())
                .unwrap();
        }
        let oldest = oldest_queued(&receiver).expect("a stamped datagram is queued");
        assert!(oldest <= Instant::now());
        assert_eq!(batch.read(&receiver).unwrap(), 4);
        let texts: Vec<&[u8]> = batch.datagrams().map(|(bytes, _)| bytes).collect();
        assert_eq!(texts, [&b"one"[..], b"two", b"three", b"four"]);
        assert!(batch.datagrams().all(|(_, at)| at <= Instant::now()));
        assert_eq!(batch.read(&receiver).unwrap(), 1);
        let (last, at) = batch.datagrams().next().unwrap();
        assert_eq!(last, b"five");
        assert!(at + Duration::from_secs(1) > before);
        assert_eq!(oldest_queued(&receiver), None);
    }

    #[test]
    fn a_datagram_read_late_keeps_the_instant_it_arrived() {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = Batch::new(1, 64);
        enable(&receiver).unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // The kernel switches receive stamping on for the whole machine through a
        // deferred work item when the first socket asks: until it has run, a datagram
        // is stamped when it is read. So a few tries; once on, the stamp must be the
        // arrival's.
        let mut seen = Vec::new();
        for _ in 0..10 {
            let sent_at = Instant::now();
            sender
                .send_to(b"user=u folder=5", receiver.local_addr().unwrap())
                .unwrap();
            let after_send = Instant::now();
            std::thread::sleep(Duration::from_millis(30));
            assert_eq!(batch.read(&receiver).unwrap(), 1);
            let (bytes, received_at) = batch.datagrams().next().unwrap();
            assert_eq!(bytes, b"user=u folder=5");
            // Stamped between the send and its return (loopback delivers inside
            // send_to), give or take the two clocks' reads and a busy machine's
            // scheduling; not 30 ms later when it was read.
            if received_at >= sent_at.checked_sub(Duration::from_millis(1)).unwrap()
                && received_at <= after_send + Duration::from_millis(10)
            {
                return;
            }
            seen.push(received_at.saturating_duration_since(sent_at));
        }
        panic!("every datagram was stamped when read: {seen:?} after its send");
    }
}
