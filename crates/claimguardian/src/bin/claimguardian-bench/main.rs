//! Benchmarks, run on purpose (`just bench`), never in CI. Each measures the
//! thing side by side with a baseline in the same run, on a private durable
//! PostgreSQL (fsync on, as in production) in a temporary directory.
//!
//!   claimguardian-bench audit [--seconds S] [--rounds R] [--writers W] [--entries N]
//!   claimguardian-bench gateway [--seconds S] [--rounds R] [--organizations N] [--server PATH]

mod audit;
mod gateway;
mod latency;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "claimguardian-bench", about = "ClaimGuardian benchmarks")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Audit appends per second across organizations and on one, against plain
    /// inserts; then verification of one long chain from the database.
    Audit {
        /// Length of each measured phase.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Interleaved rounds of the three phases; medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Concurrent writers.
        #[arg(long, default_value_t = 8)]
        writers: usize,
        /// Entries in the chain that is verified.
        #[arg(long, default_value_t = 1_000_000)]
        entries: i64,
    },
    /// The gateway's hop cost: the same calls direct to the service and
    /// through a gateway process (authentication, policy, rate limiting on).
    Gateway {
        /// Length of each measured phase.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// Interleaved rounds; medians over rounds are reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Organizations the load is spread over (each has its own rate
        /// limit allowance, as separate tenants do).
        #[arg(long, default_value_t = 16)]
        organizations: usize,
        /// The `claimguardian` binary to run the servers with; by default the
        /// one built next to this benchmark.
        #[arg(long)]
        server: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Audit {
            seconds,
            rounds,
            writers,
            entries,
        } => audit::run(Duration::from_secs(seconds), rounds, writers, entries).await,
        Bench::Gateway {
            seconds,
            rounds,
            organizations,
            server,
        } => {
            gateway::run(gateway::Options {
                length: Duration::from_secs(seconds),
                rounds,
                organizations,
                server,
            })
            .await
        }
    }
}
