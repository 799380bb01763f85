//! The gateway's hop cost: the same unary calls made direct to the service
//! and through a gateway process with authentication, tenant resolution,
//! the IP allow-list, policy and rate limiting on, in interleaved rounds of
//! one run; medians over rounds. Every server is its own `claimguardian
//! serve` process, so each one's CPU time per call is read on its own.

mod calls;
mod deployment;
mod load;
mod process_cpu;
mod report;
mod tenants;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use cg_context::MeshKey;
use cg_pgcluster::{ClusterOptions, PgCluster, ServerBinaries};

use calls::{Call, Caller, Route};
use deployment::Deployment;
use report::{Goal, Measure, Rounds};

#[derive(Debug)]
pub struct Options {
    pub length: Duration,
    pub rounds: usize,
    pub organizations: usize,
    pub server: Option<PathBuf>,
}

/// The concurrencies of the closed-loop phases; the larger is also the
/// number of client connections.
const CONCURRENCIES: [usize; 2] = [1, 16];
/// Calls before each measured phase, unmeasured: connections, pools and
/// caches are warm when the clock starts.
const WARM_UP: Duration = Duration::from_millis(300);

/// How a phase loads the route.
#[derive(Debug, Clone, Copy)]
enum Load {
    Closed { concurrency: usize },
    Open { rate: f64 },
}

/// The processes whose CPU time is read.
struct Pids {
    gateway: u32,
    identity: u32,
    claims: u32,
    postmaster: u32,
}

struct CpuSnapshot {
    gateway: Duration,
    service: Duration,
    postgres: Duration,
}

impl Pids {
    fn snapshot(&self, call: Call) -> anyhow::Result<CpuSnapshot> {
        let service = match call {
            Call::CheckPermission => self.identity,
            Call::GetProperty => self.claims,
        };
        Ok(CpuSnapshot {
            gateway: process_cpu::cpu_time(self.gateway)?,
            service: process_cpu::cpu_time(service)?,
            postgres: process_cpu::cpu_time_with_children(self.postmaster)?,
        })
    }
}

/// Runs one phase on one route: warm up, then measure latency, rate and
/// the CPU each process spent per call.
async fn measure(
    caller: &Caller,
    load: Load,
    length: Duration,
    pids: &Pids,
) -> anyhow::Result<Measure> {
    let warm_concurrency = match load {
        Load::Closed { concurrency } => concurrency,
        Load::Open { .. } => caller.connections(),
    };
    load::closed_loop(caller, warm_concurrency, WARM_UP).await?;
    let before = pids.snapshot(caller.call)?;
    let observed = match load {
        Load::Closed { concurrency } => load::closed_loop(caller, concurrency, length).await?,
        Load::Open { rate } => load::open_loop(caller, rate, length).await?,
    };
    let after = pids.snapshot(caller.call)?;
    if let Some(failure) = &observed.first_failure {
        eprintln!("    {} calls failed, the first: {failure}", observed.failed);
    }
    let calls = observed.calls().max(1) as f64;
    let per_call = |a: Duration, b: Duration| (b.saturating_sub(a)).as_secs_f64() * 1e6 / calls;
    Ok(Measure {
        p50: observed.latencies.percentile_micros(0.50),
        p90: observed.latencies.percentile_micros(0.90),
        p99: observed.latencies.percentile_micros(0.99),
        per_second: observed.per_second(),
        gateway_cpu: per_call(before.gateway, after.gateway),
        service_cpu: per_call(before.service, after.service),
        postgres_cpu: per_call(before.postgres, after.postgres),
        failed: observed.failed as f64,
    })
}

/// Both routes of a phase, the direct one first in even rounds and second
/// in odd ones, so neither always runs on a machine the other just warmed.
async fn measure_pair(
    direct: &Caller,
    gateway: &Caller,
    load: Load,
    length: Duration,
    pids: &Pids,
    round: usize,
) -> anyhow::Result<(Measure, Measure)> {
    if round.is_multiple_of(2) {
        let d = measure(direct, load, length, pids).await?;
        let g = measure(gateway, load, length, pids).await?;
        Ok((d, g))
    } else {
        let g = measure(gateway, load, length, pids).await?;
        let d = measure(direct, load, length, pids).await?;
        Ok((d, g))
    }
}

fn progress(round: usize, rounds: usize, phase: &str, (d, g): &(Measure, Measure)) {
    eprintln!(
        "  round {}/{rounds} {phase}: direct {:.0}/s p50 {:.0} µs | gateway {:.0}/s p50 {:.0} µs, {:.1} µs gateway CPU per call",
        round + 1,
        d.per_second,
        d.p50,
        g.per_second,
        g.p50,
        g.gateway_cpu
    );
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    anyhow::ensure!(options.rounds >= 1, "at least one round");
    anyhow::ensure!(options.organizations >= 1, "at least one organization");
    let server = deployment::server_binary(options.server.clone())?;
    let dir = tempfile::tempdir()?;
    let binaries = ServerBinaries::locate()?;
    // Six server processes each keep pools; PostgreSQL's default 100 is tight.
    let cluster = PgCluster::start(
        &binaries,
        ClusterOptions {
            max_connections: 300,
            ..ClusterOptions::durable(dir.path().join("pg"))
        },
    )
    .await?;
    let result = async {
        claimguardian::database::ensure_database(&cluster.url("postgres"), "bench").await?;
        let url = cluster.url("bench");
        claimguardian::database::migrate_all(&url, &mut ()).await?;
        let operator_key = {
            let pool = cg_db::connect_control(&url, 1).await?;
            cg_identity::operator_keys::create(&pool, "gateway benchmark")
                .await?
                .secret_key
        };
        let mesh_key = Arc::new(MeshKey::generate());
        eprintln!(
            "starting the services and the gateway ({})…",
            server.display()
        );
        let deployment =
            Deployment::start(&server, &url, &mesh_key, dir.path(), dir.path()).await?;
        let result = bench(&options, &deployment, &operator_key, mesh_key, &cluster).await;
        if result.is_err() {
            eprintln!("server logs were in {}", dir.path().display());
        }
        drop(deployment);
        result
    }
    .await;
    cluster.stop().await?;
    result
}

async fn bench(
    options: &Options,
    deployment: &Deployment,
    operator_key: &str,
    mesh_key: Arc<MeshKey>,
    cluster: &PgCluster,
) -> anyhow::Result<()> {
    let connections = CONCURRENCIES[CONCURRENCIES.len() - 1];
    let gateway_channels = deployment::connect(&deployment.gateway.addr, connections).await?;
    eprintln!(
        "creating {} {} organizations through the gateway…",
        options.organizations,
        tenants::TIER
    );
    let tenants = tenants::create(
        gateway_channels[0].clone(),
        operator_key,
        options.organizations,
    )
    .await
    .context("arrange the organizations")?;
    let pids = Pids {
        gateway: deployment.gateway.pid,
        identity: deployment.identity.pid,
        claims: deployment.claims.pid,
        postmaster: process_cpu::postmaster_pid(cluster.data_dir())?,
    };
    let caller = |call: Call, route: Route, channels: Vec<tonic::transport::Channel>| {
        Caller::new(call, route, channels, &tenants, mesh_key.clone())
    };
    let identity_channels = deployment::connect(&deployment.identity.addr, connections).await?;
    let claims_channels = deployment::connect(&deployment.claims.addr, connections).await?;
    let routes = [
        (
            Call::CheckPermission,
            caller(Call::CheckPermission, Route::Direct, identity_channels)?,
            caller(
                Call::CheckPermission,
                Route::Gateway,
                gateway_channels.clone(),
            )?,
        ),
        (
            Call::GetProperty,
            caller(Call::GetProperty, Route::Direct, claims_channels)?,
            caller(Call::GetProperty, Route::Gateway, gateway_channels)?,
        ),
    ];

    let load_before = load_average();
    println!(
        "gateway hop cost: {} interleaved rounds of {} s per phase, {} organizations ({} tier), {} client connections per route; load average {load_before}",
        options.rounds,
        options.length.as_secs(),
        options.organizations,
        tenants::TIER,
        connections
    );
    // Closed loops: every call at every concurrency, both routes, per round.
    let mut closed: Vec<((Call, usize), Rounds)> = Vec::new();
    for (call, _, _) in &routes {
        for concurrency in CONCURRENCIES {
            closed.push(((*call, concurrency), Rounds::default()));
        }
    }
    for round in 0..options.rounds {
        for ((call, concurrency), rounds) in &mut closed {
            let (_, direct, gateway) = routes
                .iter()
                .find(|(c, _, _)| c == call)
                .context("every call has its routes")?;
            let load = Load::Closed {
                concurrency: *concurrency,
            };
            let pair = measure_pair(direct, gateway, load, options.length, &pids, round).await?;
            progress(
                round,
                options.rounds,
                &format!("{} c={concurrency}", call.name()),
                &pair,
            );
            rounds.pairs.push(pair);
        }
    }
    let phase = |call: Call, concurrency: usize| {
        closed
            .iter()
            .find(|((c, n), _)| *c == call && *n == concurrency)
            .map(|(_, rounds)| rounds)
            .context("every phase ran")
    };

    // Open loops on the cheap call: half the direct maximum (what the issue
    // asks), and half the gateway's own maximum (the latency below saturation).
    let cheap = phase(Call::CheckPermission, connections)?;
    let direct_max = cheap.direct(|m| m.per_second);
    let gateway_max = cheap.gateway(|m| m.per_second);
    let (_, direct, gateway) = &routes[0];
    let mut open = Vec::new();
    for (label, rate) in [
        ("half the direct maximum", direct_max / 2.0),
        ("half the gateway maximum", gateway_max / 2.0),
    ] {
        let mut rounds = Rounds::default();
        for round in 0..options.rounds {
            let pair = measure_pair(
                direct,
                gateway,
                Load::Open { rate },
                options.length,
                &pids,
                round,
            )
            .await?;
            progress(
                round,
                options.rounds,
                &format!("open loop {rate:.0}/s ({label})"),
                &pair,
            );
            rounds.pairs.push(pair);
        }
        open.push((label, rate, rounds));
    }

    println!();
    println!(
        "medians over {} rounds; added = gateway − direct within each round; CPU in µs per call; load average {load_before} before, {} after",
        options.rounds,
        load_average()
    );
    report::print_header();
    for ((call, concurrency), rounds) in &closed {
        report::print_phase(
            &format!("{} closed loop, concurrency {concurrency}", call.name()),
            rounds,
        );
    }
    for (label, rate, rounds) in &open {
        report::print_phase(
            &format!(
                "{} open loop at {rate:.0} calls/s ({label}), latency from the scheduled send",
                Call::CheckPermission.name()
            ),
            rounds,
        );
    }
    println!();
    let cheap_c1 = phase(Call::CheckPermission, 1)?;
    let property = phase(Call::GetProperty, connections)?;
    report::print_goals(&[
        Goal {
            measure: "added p50, CheckPermission, concurrency 1",
            result: cheap_c1.added(|m| m.p50),
            unit: "µs",
            bound: 100.0,
            at_most: true,
        },
        Goal {
            measure: "gateway CPU per call, CheckPermission, concurrency 16",
            result: cheap.gateway(|m| m.gateway_cpu),
            unit: "µs",
            bound: 25.0,
            at_most: true,
        },
        Goal {
            measure: "throughput gateway/direct, CheckPermission, c=16",
            result: cheap.throughput_ratio(),
            unit: "",
            bound: 0.33,
            at_most: false,
        },
        Goal {
            measure: "throughput gateway/direct, GetProperty, c=16",
            result: property.throughput_ratio(),
            unit: "",
            bound: 0.7,
            at_most: false,
        },
    ]);
    Ok(())
}
