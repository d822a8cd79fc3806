//! Open-loop pacing for `rzk bench --rate`: when each request was *meant* to be
//! sent. Latency is measured from that intended time, not from when the client
//! got round to sending it, so a stalled server cannot hide its stall by slowing
//! the load down (no coordinated omission).
//!
//! Pure: offsets from the run's start; the runner turns them into instants.

use std::time::Duration;

/// The send schedule of one client: a fixed interval, with clients phase-shifted
/// so N clients at rate R/N each add up to an even stream at rate R.
#[derive(Clone, Debug)]
pub struct Pacer {
    interval_nanos: f64,
    phase_nanos: f64,
    sent: u64,
}

impl Pacer {
    /// `total_rate` is operations per second summed over `clients`. Returns
    /// `None` for rates that are not positive and finite.
    pub fn new(total_rate: f64, clients: usize, client_index: usize) -> Option<Pacer> {
        if !(total_rate.is_finite() && total_rate > 0.0) || clients == 0 {
            return None;
        }
        let per_client = total_rate / clients as f64;
        let interval_nanos = 1e9 / per_client;
        let phase_nanos = interval_nanos * (client_index % clients) as f64 / clients as f64;
        Some(Pacer {
            interval_nanos,
            phase_nanos,
            sent: 0,
        })
    }

    /// Intended send time of the next request, as an offset from the start.
    pub fn next_offset(&mut self) -> Duration {
        let nanos = self.phase_nanos + self.interval_nanos * self.sent as f64;
        self.sent += 1;
        Duration::from_nanos(nanos.min(u64::MAX as f64) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_positive_rates() {
        assert!(Pacer::new(0.0, 1, 0).is_none());
        assert!(Pacer::new(-5.0, 1, 0).is_none());
        assert!(Pacer::new(f64::NAN, 1, 0).is_none());
        assert!(Pacer::new(f64::INFINITY, 1, 0).is_none());
        assert!(Pacer::new(10.0, 0, 0).is_none());
    }

    #[test]
    fn single_client_is_evenly_spaced() {
        let mut pacer = Pacer::new(100.0, 1, 0).unwrap();
        let offsets: Vec<_> = (0..4).map(|_| pacer.next_offset()).collect();
        assert_eq!(offsets, [0, 10, 20, 30].map(Duration::from_millis).to_vec());
    }

    #[test]
    fn clients_interleave_to_the_total_rate() {
        // 4 clients at 1000/s total: each sends every 4ms, shifted by 1ms.
        let mut all: Vec<Duration> = (0..4)
            .flat_map(|client| {
                let mut pacer = Pacer::new(1000.0, 4, client).unwrap();
                (0..5).map(move |_| pacer.next_offset())
            })
            .collect();
        all.sort();
        let expected: Vec<Duration> = (0..20).map(Duration::from_millis).collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn schedule_does_not_drift() {
        let mut pacer = Pacer::new(3.0, 1, 0).unwrap();
        let mut last = Duration::ZERO;
        for _ in 0..30_001 {
            last = pacer.next_offset();
        }
        // 30 000 intervals of 1/3 s is exactly 10 000 s (within float rounding).
        let error = last.as_secs_f64() - 10_000.0;
        assert!(error.abs() < 1e-3, "drifted by {error}s");
    }
}
