//! What a phase measured, medians over rounds, and the printed report with
//! each goal beside its result.

use crate::latency::median;

/// One route of one phase in one round.
#[derive(Debug, Clone, Copy)]
pub struct Measure {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub per_second: f64,
    /// CPU of the gateway process per call, µs (0 on the direct route: it is idle).
    pub gateway_cpu: f64,
    /// CPU of the service process per call, µs.
    pub service_cpu: f64,
    /// CPU of PostgreSQL (postmaster and backends) per call, µs.
    pub postgres_cpu: f64,
    /// Calls answered with an error (only an overloaded open loop has any).
    pub failed: f64,
}

/// The direct and gateway measures of one phase, round by round.
#[derive(Debug, Clone, Default)]
pub struct Rounds {
    pub pairs: Vec<(Measure, Measure)>,
}

impl Rounds {
    fn median_of(&self, value: impl Fn(&(Measure, Measure)) -> f64) -> f64 {
        let mut values: Vec<f64> = self.pairs.iter().map(value).collect();
        median(&mut values)
    }

    pub fn direct(&self, value: impl Fn(&Measure) -> f64) -> f64 {
        self.median_of(|(direct, _)| value(direct))
    }

    pub fn gateway(&self, value: impl Fn(&Measure) -> f64) -> f64 {
        self.median_of(|(_, gateway)| value(gateway))
    }

    /// Median over rounds of gateway − direct within each round, so that
    /// load that changes between rounds cancels out.
    pub fn added(&self, value: impl Fn(&Measure) -> f64) -> f64 {
        self.median_of(|(direct, gateway)| value(gateway) - value(direct))
    }

    /// Median over rounds of the gateway's calls/s over the direct ones.
    pub fn throughput_ratio(&self) -> f64 {
        self.median_of(|(direct, gateway)| gateway.per_second / direct.per_second)
    }
}

pub fn print_header() {
    println!(
        "  {:<28} {:>8} {:>8} {:>8} {:>9} {:>7} {:>7} {:>7} {:>7}",
        "", "p50 µs", "p90 µs", "p99 µs", "calls/s", "gw CPU", "svc CPU", "PG CPU", "failed"
    );
}

/// The columns of a row, in the header's order.
const COLUMNS: [fn(&Measure) -> f64; 8] = [
    |m| m.p50,
    |m| m.p90,
    |m| m.p99,
    |m| m.per_second,
    |m| m.gateway_cpu,
    |m| m.service_cpu,
    |m| m.postgres_cpu,
    |m| m.failed,
];

fn print_row(label: &str, values: impl Iterator<Item = f64>) {
    let mut line = format!("  {label:<28}");
    for (column, value) in values.enumerate() {
        // Latencies and rates in whole units, CPU to a tenth of a µs.
        if (4..7).contains(&column) {
            line.push_str(&format!(" {value:>7.1}"));
        } else if column < 3 {
            line.push_str(&format!(" {value:>8.0}"));
        } else if column == 3 {
            line.push_str(&format!(" {value:>9.0}"));
        } else {
            line.push_str(&format!(" {value:>7.0}"));
        }
    }
    println!("{line}");
}

/// Prints one phase: both routes, what the gateway added, and the ratio.
pub fn print_phase(title: &str, rounds: &Rounds) {
    println!("{title}");
    print_row("direct", COLUMNS.iter().map(|f| rounds.direct(f)));
    print_row(
        "through the gateway",
        COLUMNS.iter().map(|f| rounds.gateway(f)),
    );
    println!(
        "  {:<28} {:>8.0} {:>8.0} {:>8.0} {:>9} (ratio {:.2})",
        "added by the gateway",
        rounds.added(|m| m.p50),
        rounds.added(|m| m.p90),
        rounds.added(|m| m.p99),
        "",
        rounds.throughput_ratio()
    );
}

/// One goal: its measure, its result and whether it is met.
pub struct Goal {
    pub measure: &'static str,
    pub result: f64,
    pub unit: &'static str,
    pub bound: f64,
    /// The result must be at most (true) or at least (false) the bound.
    pub at_most: bool,
}

impl Goal {
    pub fn met(&self) -> bool {
        if self.at_most {
            self.result <= self.bound
        } else {
            self.result >= self.bound
        }
    }
}

pub fn print_goals(goals: &[Goal]) {
    println!("goals:");
    for goal in goals {
        let relation = if goal.at_most { "≤" } else { "≥" };
        println!(
            "  {:<52} {:>8.2} {:<10} goal {relation} {:<6} {}",
            goal.measure,
            goal.result,
            goal.unit,
            goal.bound,
            if goal.met() { "met" } else { "NOT MET" }
        );
    }
}
