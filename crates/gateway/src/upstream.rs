//! The services the gateway forwards to: one lazily connecting HTTP/2
//! channel each, watched through the gRPC health protocol, so calls to a
//! service that is down are refused at once instead of each waiting out a
//! connection attempt, and traffic returns by itself when it is back.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use cg_status::{ERROR_DOMAIN, reason};
use tonic::transport::{Channel, Endpoint};

use crate::background::BackgroundTasks;
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::{ErrorDetails, StatusExt as _};

/// Most calls in flight to one service from this gateway; more wait for a
/// slot (within their deadline) rather than pile onto a struggling service.
const MAX_IN_FLIGHT: usize = 1024;
/// First pause before watching a service's health again after losing it.
const MIN_WATCH_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between health watch attempts: also the longest a
/// recovered service waits for traffic.
const MAX_WATCH_BACKOFF: Duration = Duration::from_secs(1);

/// What the gateway last learnt about a service's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Health {
    /// Not yet known (just started): calls are attempted.
    Unknown = 0,
    Serving = 1,
    /// Unreachable or reporting not serving: calls are refused at once.
    Down = 2,
}

/// One upstream service.
#[derive(Debug)]
pub struct Upstream {
    service: String,
    channel: Channel,
    health: AtomicU8,
}

impl Upstream {
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn health(&self) -> Health {
        match self.health.load(Ordering::Relaxed) {
            1 => Health::Serving,
            2 => Health::Down,
            _ => Health::Unknown,
        }
    }

    fn set_health(&self, health: Health) {
        let before = self.health.swap(health as u8, Ordering::Relaxed);
        if before != health as u8 {
            match health {
                Health::Down => tracing::warn!(service = %self.service, "upstream is down"),
                _ => tracing::info!(service = %self.service, ?health, "upstream health"),
            }
        }
    }

    /// `UNAVAILABLE` naming the service, with when to retry.
    pub fn unavailable(&self) -> Status {
        let mut details = ErrorDetails::with_error_info(
            reason::UPSTREAM_UNAVAILABLE,
            ERROR_DOMAIN,
            [("service".to_owned(), self.service.clone())],
        );
        details.set_retry_info(Some(MAX_WATCH_BACKOFF));
        Status::with_error_details(
            Code::Unavailable,
            format!("{} is unavailable, retry shortly", self.service),
            details,
        )
    }

    /// Follows the service's health until the task is dropped: the health
    /// `Watch` stream shares the calls' connection, so it ends as soon as the
    /// service goes away.
    async fn watch(self: Arc<Self>) {
        let mut backoff = MIN_WATCH_BACKOFF;
        loop {
            let mut client = HealthClient::new(self.channel.clone());
            let request = HealthCheckRequest {
                service: self.service.clone(),
            };
            match client.watch(request).await {
                Ok(response) => {
                    let mut updates = response.into_inner();
                    while let Ok(Some(update)) = updates.message().await {
                        let serving = update.status == ServingStatus::Serving as i32;
                        self.set_health(if serving {
                            Health::Serving
                        } else {
                            Health::Down
                        });
                        if serving {
                            backoff = MIN_WATCH_BACKOFF;
                        }
                    }
                }
                Err(status) if status.code() == Code::Unimplemented => {
                    // A service without health reporting is never refused early.
                    self.set_health(Health::Unknown);
                    tracing::warn!(service = %self.service, "upstream has no health service");
                    return;
                }
                Err(_) => {}
            }
            self.set_health(Health::Down);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_WATCH_BACKOFF);
        }
    }
}

/// Upstream services by fully qualified service name.
#[derive(Debug, Clone, Default)]
pub struct Upstreams {
    services: HashMap<String, Arc<Upstream>>,
}

impl Upstreams {
    /// Adds the service at `address` (`http://host:port`); connects lazily
    /// and reconnects by itself.
    pub fn add(&mut self, service: &str, address: &str) -> anyhow::Result<()> {
        let channel = Endpoint::from_shared(address.to_owned())
            .with_context(|| format!("upstream address {address}"))?
            // Without it every small call waits on Nagle's algorithm.
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(2))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true)
            .concurrency_limit(MAX_IN_FLIGHT)
            .connect_lazy();
        self.services.insert(
            service.to_owned(),
            Arc::new(Upstream {
                service: service.to_owned(),
                channel,
                health: AtomicU8::new(Health::Unknown as u8),
            }),
        );
        Ok(())
    }

    pub fn get(&self, service: &str) -> Option<&Arc<Upstream>> {
        self.services.get(service)
    }

    /// Follows every service's health for as long as `tasks` lives.
    pub fn watch_health(&self, tasks: &mut BackgroundTasks) {
        for upstream in self.services.values() {
            tasks.spawn(upstream.clone().watch());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
