//! Latency samples of one phase and their percentiles; medians over rounds.

use std::time::Duration;

/// Every latency of one phase, sorted.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    nanos: Vec<u64>,
}

impl Latencies {
    pub fn new(samples: impl IntoIterator<Item = Duration>) -> Latencies {
        let mut nanos: Vec<u64> = samples
            .into_iter()
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .collect();
        nanos.sort_unstable();
        Latencies { nanos }
    }

    pub fn count(&self) -> usize {
        self.nanos.len()
    }

    /// The `q` quantile (0 < q ≤ 1) in microseconds, by nearest rank: a value
    /// that was actually observed, never an interpolation.
    pub fn percentile_micros(&self, q: f64) -> f64 {
        if self.nanos.is_empty() {
            return f64::NAN;
        }
        let rank = (q * self.nanos.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.nanos.len()) - 1;
        self.nanos[index] as f64 / 1_000.0
    }
}

/// The median of `values` (the upper one of an even count).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
