//! Load shapes: a closed loop (each worker sends its next call when the last
//! answers) and an open loop (calls leave on a fixed schedule whatever the
//! answers, latency counted from each call's scheduled time so that a slow
//! answer cannot hide the calls queued behind it — no coordinated omission).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::task::JoinSet;

use super::calls::Caller;
use crate::latency::Latencies;

/// What one phase observed.
#[derive(Debug, Clone)]
pub struct Observed {
    pub latencies: Latencies,
    /// From the first send to the last answer.
    pub elapsed: Duration,
    /// Calls answered with an error (open loops only: a closed loop stops
    /// at the first), and the first such answer.
    pub failed: usize,
    pub first_failure: Option<String>,
}

impl Observed {
    pub fn calls(&self) -> usize {
        self.latencies.count()
    }

    pub fn per_second(&self) -> f64 {
        self.calls() as f64 / self.elapsed.as_secs_f64()
    }
}

fn failure(caller: &Caller, status: &tonic::Status) -> String {
    format!(
        "{} {} answered {:?}: {}",
        caller.route.name(),
        caller.call.name(),
        status.code(),
        status.message()
    )
}

/// `concurrency` workers, worker `w` on connection `w`, taking the tenants
/// in turn (`w`, `w + concurrency`, …) so the load spreads over all of
/// them, for `length`.
pub async fn closed_loop(
    caller: &Caller,
    concurrency: usize,
    length: Duration,
) -> anyhow::Result<Observed> {
    anyhow::ensure!(
        concurrency <= caller.connections(),
        "{concurrency} workers need as many connections"
    );
    let started = Instant::now();
    let deadline = started + length;
    let mut workers = JoinSet::new();
    for worker in 0..concurrency {
        let caller = caller.clone();
        workers.spawn(async move {
            let mut samples = Vec::with_capacity(16_384);
            let mut tenant = worker;
            while Instant::now() < deadline {
                let sent = Instant::now();
                caller.call(worker, tenant).await.map_err(|status| {
                    anyhow::anyhow!(
                        "{}; a closed-loop measure includes no failed call",
                        failure(&caller, &status)
                    )
                })?;
                samples.push(sent.elapsed());
                tenant += concurrency;
            }
            anyhow::Ok(samples)
        });
    }
    let mut samples = Vec::new();
    while let Some(worker) = workers.join_next().await {
        samples.extend(worker.context("a worker panicked")??);
    }
    Ok(Observed {
        elapsed: started.elapsed(),
        latencies: Latencies::new(samples),
        failed: 0,
        first_failure: None,
    })
}

/// `rate` calls a second for `length`, spread over every connection and
/// tenant. Sends are released by tokio's timer (1 ms resolution), so at
/// rates above 1,000/s they leave in small bursts each millisecond; each
/// call's latency still starts at its own scheduled time. A rate beyond what
/// the route sustains builds a queue whose calls may time out: they are
/// counted as failed, with their latency until the error, not dropped.
pub async fn open_loop(caller: &Caller, rate: f64, length: Duration) -> anyhow::Result<Observed> {
    anyhow::ensure!(rate > 0.0, "an open loop needs a positive rate");
    let total = (rate * length.as_secs_f64()).round() as usize;
    let started = Instant::now();
    let mut calls = JoinSet::new();
    for n in 0..total {
        let scheduled = started + Duration::from_secs_f64(n as f64 / rate);
        tokio::time::sleep_until(scheduled.into()).await;
        let caller = caller.clone();
        calls.spawn(async move {
            let answer = caller.call(n, n).await;
            (
                scheduled.elapsed(),
                answer.map_err(|status| failure(&caller, &status)),
            )
        });
    }
    let mut samples = Vec::with_capacity(total);
    let mut failed = 0;
    let mut first_failure = None;
    while let Some(call) = calls.join_next().await {
        let (latency, answer) = call.context("a call panicked")?;
        samples.push(latency);
        if let Err(error) = answer {
            failed += 1;
            first_failure.get_or_insert(error);
        }
    }
    Ok(Observed {
        elapsed: started.elapsed(),
        latencies: Latencies::new(samples),
        failed,
        first_failure,
    })
}
