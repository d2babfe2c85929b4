//! Measurements: latency histograms, and figures read from the operating system
//! (process memory, CPU, kernel socket counters). Every reader returns `None` when the
//! figure cannot be read, so a report can say "not measured" instead of inventing one.
//!
//! Layout:
//! - [`latency`]: HDR histograms in microseconds, mergeable across shards;
//!   [`intervals`]: what they gained second by second, and the interval log.
//! - [`procfs`]: RSS, CPU, slab and socket counters from /proc.
//! - [`tcp_info`]: a TCP connection's round trip and retransmissions (`TCP_INFO`).
//! - [`heap`]: this process's live heap bytes, from the global allocator.
//! - [`calibration`]: the loopback floor (a datagram wakes a parked socket, no EAS).

pub(crate) mod calibration;
pub(crate) mod heap;
pub(crate) mod intervals;
pub mod latency;
pub mod procfs;
pub mod tcp_info;

/// The least-squares slope of y over x: memory per connection measured across several
/// connection counts, so fixed overhead drops out. NaN for fewer than two distinct x.
pub fn least_squares_slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let covariance: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let variance: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    covariance / variance
}

#[cfg(test)]
mod tests {
    #[test]
    fn slope_of_a_line_with_an_offset() {
        let points = [
            (1000.0, 5e6 + 1.5e6),
            (5000.0, 5e6 + 7.5e6),
            (15000.0, 5e6 + 22.5e6),
        ];
        assert!((super::least_squares_slope(&points) - 1500.0).abs() < 1e-6);
        assert!(super::least_squares_slope(&[(1.0, 2.0)]).is_nan());
    }
}
