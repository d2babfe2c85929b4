//! Packet-delivery traces in mahimahi's format, a network profile's `down_trace` and
//! `up_trace`: reading and checking a trace file, the delivery opportunities it gives a
//! link, and where one direction of one link is in its trace. The queue limit, losses,
//! delay and outages around it are the shaper's.
//!
//! The format, as mahimahi's `mm-link` reads it (`src/frontend/link_queue.cc`): one
//! whole number a line, the millisecond from the trace's start at which the link can
//! deliver one MTU-sized packet; a millisecond on several lines is as many
//! opportunities. Timestamps never decrease and the last is above 0; after the last
//! line the trace repeats, shifted by the last timestamp. Accounting is by the byte:
//! an opportunity carries 1,504 bytes (`PACKET_SIZE`, one 1,500-byte packet and the
//! 4-byte header mahimahi's TUN reads carry, so a packet takes its length and 4).
//! Several small packets share an opportunity; a packet the bytes left cannot hold
//! takes them and finishes at the next opportunity; a packet leaves at the opportunity
//! of its last byte; an opportunity no packet waits for is wasted.
//!
//! Two differences, both of time: a link starts its trace at its own first packet (not
//! when the emulator starts), and a packet may use an opportunity at the very instant
//! it arrives (mahimahi counts whole milliseconds and spends the current one's before
//! it queues the packet).

use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader, Read as _};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most lines a trace may have (40 MB held once): many times the traces mahimahi
/// ships (its `TMobile-LTE-driving.down` has about half a million).
pub const MAX_TRACE_LINES: usize = 10_000_000;
/// The most bytes read of a trace file: its lines at 10 digits and a line ending.
const MAX_TRACE_BYTES: u64 = MAX_TRACE_LINES as u64 * 12;
/// Bytes one delivery opportunity carries (mahimahi's `PACKET_SIZE`).
const OPPORTUNITY_BYTES: u64 = 1504;
/// Bytes a packet takes beyond its own (the TUN packet-information header mahimahi
/// reads; ours reads packets without it).
const PACKET_HEADER_BYTES: u64 = 4;

/// A trace file that cannot be used, said with its file and, where there is one, its
/// line (counted from 1).
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot read the delivery trace {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: an empty line (a trace has one whole number a line)")]
    EmptyLine { file: String, line: usize },
    #[error("{file}:{line}: `{text}` is not a millisecond (a trace has one whole number a line)")]
    NotANumber {
        file: String,
        line: usize,
        text: String,
    },
    #[error(
        "{file}:{line}: {ms} ms comes before the line above's {previous} ms \
         (a trace's timestamps never decrease)"
    )]
    Decreasing {
        file: String,
        line: usize,
        ms: u32,
        previous: u32,
    },
    #[error("{file}: no delivery opportunity (the trace is empty)")]
    Empty { file: String },
    #[error("{file}: the last timestamp is 0 ms (a trace lasts more than 0 ms before it repeats)")]
    NoLength { file: String },
    #[error("{file}: more than {lines} lines (or {bytes} bytes)")]
    TooLong {
        file: String,
        lines: usize,
        bytes: u64,
    },
}

/// A packet-delivery trace, read once and shared by every link that follows it.
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveryTrace {
    /// Each opportunity's millisecond from the trace's start, never decreasing.
    ms: Arc<[u32]>,
}

impl fmt::Debug for DeliveryTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryTrace")
            .field("opportunities", &self.ms.len())
            .field("period_ms", &self.period_ms())
            .finish()
    }
}

impl DeliveryTrace {
    /// Reads and checks the trace file at `path`.
    pub fn load(path: &Path) -> Result<Self, TraceError> {
        let file = path.display().to_string();
        let opened = std::fs::File::open(path).map_err(|source| TraceError::Read {
            file: file.clone(),
            source,
        })?;
        Self::read(BufReader::new(opened.take(MAX_TRACE_BYTES + 1)), &file)
    }

    /// Reads and checks a trace from `reader`, calling it `file` in errors.
    pub fn read(reader: impl BufRead, file: &str) -> Result<Self, TraceError> {
        Self::read_at_most(reader, file, MAX_TRACE_LINES)
    }

    /// [`Self::read`], refusing more than `max_lines` lines.
    fn read_at_most(
        reader: impl BufRead,
        file: &str,
        max_lines: usize,
    ) -> Result<Self, TraceError> {
        let name = || file.to_owned();
        let max_bytes = max_lines as u64 * 12;
        let (mut ms, mut bytes) = (Vec::new(), 0u64);
        for (index, line) in reader.lines().enumerate() {
            let line = line.map_err(|source| TraceError::Read {
                file: name(),
                source,
            })?;
            bytes += line.len() as u64 + 1;
            if index >= max_lines || bytes > max_bytes {
                return Err(TraceError::TooLong {
                    file: name(),
                    lines: max_lines,
                    bytes: max_bytes,
                });
            }
            let text = line.trim();
            if text.is_empty() {
                return Err(TraceError::EmptyLine {
                    file: name(),
                    line: index + 1,
                });
            }
            let at: u32 = text.parse().map_err(|_| TraceError::NotANumber {
                file: name(),
                line: index + 1,
                text: text.to_owned(),
            })?;
            if let Some(&previous) = ms.last() {
                if at < previous {
                    return Err(TraceError::Decreasing {
                        file: name(),
                        line: index + 1,
                        ms: at,
                        previous,
                    });
                }
            }
            ms.push(at);
        }
        match ms.last() {
            None => Err(TraceError::Empty { file: name() }),
            Some(0) => Err(TraceError::NoLength { file: name() }),
            Some(_) => Ok(Self { ms: ms.into() }),
        }
    }

    /// The trace's length: it repeats, shifted by this, after its last line.
    fn period_ms(&self) -> u64 {
        self.ms.last().map_or(0, |&last| u64::from(last))
    }

    /// The millisecond, from the link's start, of opportunity `index`, counted over
    /// the trace's repeats.
    fn at_ms(&self, index: u64) -> u64 {
        let lines = self.ms.len() as u64;
        (index / lines) * self.period_ms() + u64::from(self.ms[(index % lines) as usize])
    }

    /// The first opportunity at or after millisecond `ms` from the link's start.
    fn first_from(&self, ms: u64) -> u64 {
        if ms == 0 {
            return 0;
        }
        // The repeat whose opportunities reach `ms`: the one before holds at most
        // its start (a repeat ends at the next one's start).
        let repeat = (ms - 1) / self.period_ms();
        let within = ms - repeat * self.period_ms();
        let position = self.ms.partition_point(|&at| u64::from(at) < within);
        repeat * self.ms.len() as u64 + position as u64
    }
}

/// A link's traces, one per direction that has one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkTraces {
    /// Server to phone.
    pub down: Option<DeliveryTrace>,
    /// Phone to server.
    pub up: Option<DeliveryTrace>,
}

/// Where one direction of one link is in its trace, and what waits to leave.
#[derive(Debug, Clone, Default)]
pub(crate) struct TraceCursor {
    /// The next opportunity with bytes left.
    next: u64,
    /// Bytes of it already taken.
    taken: u64,
    /// The packets not yet gone: when each leaves, and its bytes.
    waiting: VecDeque<(Instant, usize)>,
    waiting_bytes: usize,
}

impl TraceCursor {
    /// Bytes still waiting to leave at `now`.
    pub(crate) fn backlog(&mut self, now: Instant) -> usize {
        while let Some(&(leaves, bytes)) = self.waiting.front() {
            if leaves > now {
                break;
            }
            self.waiting.pop_front();
            self.waiting_bytes -= bytes;
        }
        self.waiting_bytes
    }

    /// When a packet of `bytes` arriving at `now` leaves a link that started `trace`
    /// at `origin`: at the opportunity that carries its last byte.
    pub(crate) fn depart(
        &mut self,
        trace: &DeliveryTrace,
        origin: Instant,
        bytes: usize,
        now: Instant,
    ) -> Instant {
        let since = now.saturating_duration_since(origin);
        let since_ms = u64::try_from(since.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        if trace.at_ms(self.next) < since_ms {
            // The opportunities before `now` found nothing waiting: wasted.
            self.next = trace.first_from(since_ms);
            self.taken = 0;
        }
        let mut need = bytes as u64 + PACKET_HEADER_BYTES;
        while need > OPPORTUNITY_BYTES - self.taken {
            need -= OPPORTUNITY_BYTES - self.taken;
            (self.next, self.taken) = (self.next + 1, 0);
        }
        let leaves = origin + Duration::from_millis(trace.at_ms(self.next));
        self.taken += need;
        if self.taken == OPPORTUNITY_BYTES {
            (self.next, self.taken) = (self.next + 1, 0);
        }
        self.waiting.push_back((leaves, bytes));
        self.waiting_bytes += bytes;
        leaves
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(text: &str) -> Result<DeliveryTrace, TraceError> {
        DeliveryTrace::read(text.as_bytes(), "t.down")
    }

    #[test]
    fn opportunities_repeat_shifted_by_the_last_timestamp() {
        let every_ten = trace("0\n0\n5\n10\n").unwrap();
        // 0, 0, 5, 10, then the repeat from 10: 10, 10, 15, 20, 20, 20, 25, ...
        let times: Vec<u64> = (0..10).map(|index| every_ten.at_ms(index)).collect();
        assert_eq!(times, [0, 0, 5, 10, 10, 10, 15, 20, 20, 20]);
        for ms in 0..60 {
            let first = every_ten.first_from(ms);
            assert!(every_ten.at_ms(first) >= ms, "{ms}");
            assert!(first == 0 || every_ten.at_ms(first - 1) < ms, "{ms}");
        }
        let late_start = trace("5\n10").unwrap();
        assert_eq!(late_start.first_from(10), 1);
        assert_eq!(late_start.first_from(11), 2);
        assert_eq!(late_start.at_ms(2), 15);
    }

    #[test]
    fn packets_leave_at_the_opportunity_of_their_last_byte() {
        let every_ten = trace("0\n0\n5\n10\n").unwrap();
        let origin = Instant::now();
        let ms = |ms: u64| origin + Duration::from_millis(ms);
        let mut cursor = TraceCursor::default();
        let mut send = |bytes: usize, at: u64| cursor.depart(&every_ten, origin, bytes, ms(at));
        // Four full packets at 0: the opportunities at 0, 0, 5 and 10.
        assert_eq!(send(1500, 0), ms(0));
        assert_eq!(send(1500, 0), ms(0));
        assert_eq!(send(1500, 0), ms(5));
        assert_eq!(send(1500, 0), ms(10));
        // Two of 748 bytes (752 with the header) share the next opportunity, the
        // second at 10.
        assert_eq!(send(748, 1), ms(10));
        assert_eq!(send(748, 1), ms(10));
        // A full packet arriving at 12 finds the opportunity at 10 gone: 15.
        assert_eq!(send(1500, 12), ms(15));
        // 1000 bytes at 15 take 1004 of the first opportunity at 20; 1000 more take
        // its last 500 and 504 of the next (20 again); 1500 more take the rest of that
        // (1000) and 504 of the third at 20.
        assert_eq!(send(1000, 15), ms(20));
        assert_eq!(send(1000, 15), ms(20));
        assert_eq!(send(1500, 15), ms(20));
        // An hour idle: the next opportunity at or after 3,600,003 ms is 3,600,005.
        assert_eq!(send(100, 3_600_003), ms(3_600_005));
        assert_eq!(cursor.backlog(ms(3_600_004)), 100);
        assert_eq!(cursor.backlog(ms(3_600_005)), 0);
    }

    #[test]
    fn a_bad_trace_is_refused_with_its_file_and_line() {
        let said = |text: &str| trace(text).unwrap_err().to_string();
        assert_eq!(
            said("0\n5\n3\n10\n"),
            "t.down:3: 3 ms comes before the line above's 5 ms (a trace's timestamps never decrease)"
        );
        assert!(said("1\n\n2\n").starts_with("t.down:2: an empty line"));
        assert!(said("1\n2\nx7\n").starts_with("t.down:3: `x7`"));
        assert!(said("").contains("empty"));
        assert!(said("0\n0\n").contains("last timestamp is 0"));
        let missing = DeliveryTrace::load(Path::new("/nonexistent/a.down")).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/a.down"));
        let long = "1\n2\n3\n4\n";
        let refused = DeliveryTrace::read_at_most(long.as_bytes(), "t.down", 3);
        assert!(matches!(refused, Err(TraceError::TooLong { lines: 3, .. })));
        assert!(DeliveryTrace::read_at_most(long.as_bytes(), "t.down", 4).is_ok());
    }
}
