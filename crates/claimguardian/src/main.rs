//! `claimguardian`: run the whole platform (`up`), one server (`serve`),
//! migrations (`migrate`) and operator tasks.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use cg_audit::checkpoint::{CheckpointSigner, CheckpointVerifier};
use cg_audit::export::{read_export, verify_export};
use cg_audit::store::retention;
use cg_context::MeshKey;
use cg_gateway::{Gateway, GatewayConfig, RateLimitStore, RedisStore, Upstreams};
use cg_identity::SecretBox;
use cg_identity::outbox::MailConfig;
use cg_runtime::{GrpcServer, ServerLimits, Telemetry};
use claimguardian::database::{self, Database, PrintProgress};
use claimguardian::demo;
use claimguardian::platform::{self, Listen, ServiceDeps, ServiceKind};
use claimguardian::{audit_keys, secrets_key};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "claimguardian",
    version,
    about = "The ClaimGuardian multi-tenant platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service and the gateway in this process, on a private
    /// PostgreSQL cluster (or DATABASE_URL).
    Up {
        /// Seed the `demo` organization and print ready-to-paste grpcurl calls.
        #[arg(long)]
        demo: bool,
        /// Where the private PostgreSQL cluster keeps its data.
        #[arg(long, env = "CG_DATA_DIR", default_value = ".cg")]
        data_dir: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "CG_HOST", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
        host: IpAddr,
        /// Gateway port.
        #[arg(long, env = "CG_PORT", default_value_t = 50051)]
        port: u16,
        /// Let the system pick free ports for every server (tests, parallel runs).
        #[arg(long)]
        any_ports: bool,
        #[command(flatten)]
        mail: MailArgs,
        #[command(flatten)]
        metrics: MetricsArgs,
    },
    /// Run one server for a real deployment (one container each).
    Serve {
        #[command(subcommand)]
        server: ServeCommand,
    },
    /// Apply the control-schema migrations, then every tenant schema's.
    Migrate {
        #[arg(long, env = "CG_DATA_DIR", default_value = ".cg")]
        data_dir: PathBuf,
    },
    /// Operator tasks.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// The audit trail: offline verification, retention, legal hold.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify an export (ExportAuditLog's JSON Lines) offline, with no database.
    Verify {
        /// The export file; `-` reads standard input.
        #[arg(long)]
        file: PathBuf,
        /// The audit public key: a PEM file, or 64 hex digits.
        #[arg(long)]
        public_key: String,
    },
    /// Remove entries older than the organization's retention period, up to
    /// a signed checkpoint. Refused under legal hold.
    Purge {
        #[arg(long = "org")]
        organization: String,
        #[arg(long, env = "CG_DATA_DIR", default_value = ".cg")]
        data_dir: PathBuf,
    },
    /// Place or lift a legal hold, which stops every purge.
    LegalHold {
        #[arg(long = "org")]
        organization: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
        #[arg(long, env = "CG_DATA_DIR", default_value = ".cg")]
        data_dir: PathBuf,
    },
}

/// Where operators read metrics without an OpenTelemetry collector.
#[derive(Debug, clap::Args)]
struct MetricsArgs {
    /// Serve `GET /metrics` (Prometheus text) on this address, e.g. `127.0.0.1:9464`.
    #[arg(long, env = "CG_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
}

impl MetricsArgs {
    /// Binds the metrics listener (so a bad address fails at start) and
    /// serves it in the background.
    async fn spawn(&self, telemetry: &Telemetry) -> anyhow::Result<()> {
        let Some(addr) = self.metrics_addr else {
            return Ok(());
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("bind the metrics endpoint on {addr}"))?;
        let telemetry = telemetry.clone();
        tokio::spawn(async move {
            if let Err(error) =
                cg_runtime::serve_metrics(listener, telemetry, shutdown_requested()).await
            {
                tracing::error!(error = format!("{error:#}"), "metrics endpoint stopped");
            }
        });
        Ok(())
    }
}

/// Where identity sends messages (invitations).
#[derive(Debug, clap::Args)]
struct MailArgs {
    /// SMTP server, e.g. `smtps://user:password@mail.example.com`; unset, messages are only logged.
    #[arg(long, env = "CG_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// Sender of messages.
    #[arg(long, env = "CG_MAIL_FROM")]
    mail_from: Option<String>,
}

impl MailArgs {
    fn config(self) -> MailConfig {
        // An empty variable (as compose files pass them) means unset.
        let set = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        MailConfig {
            smtp_url: set(self.smtp_url),
            from: set(self.mail_from),
        }
    }
}

#[derive(Debug, Subcommand)]
enum ServeCommand {
    /// One domain service.
    Service {
        #[arg(value_enum)]
        kind: ServiceKind,
        #[arg(long, env = "CG_LISTEN", default_value = "0.0.0.0:50060")]
        listen: SocketAddr,
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        /// 32-byte key shared by the gateway and the services, 64 hex digits.
        #[arg(long, env = "CG_MESH_KEY", hide_env_values = true)]
        mesh_key: String,
        /// The audit service's checkpoint signing key (Ed25519 PKCS#8 PEM, mode 600).
        #[arg(long, env = "CG_AUDIT_SIGNING_KEY_FILE")]
        audit_signing_key_file: Option<PathBuf>,
        /// Identity's key for secrets at rest, 64 hex digits.
        #[arg(long, env = "CG_SECRETS_KEY", hide_env_values = true)]
        secrets_key: Option<String>,
        #[command(flatten)]
        mail: MailArgs,
    },
    /// The gateway.
    Gateway {
        #[arg(long, env = "CG_LISTEN", default_value = "0.0.0.0:50051")]
        listen: SocketAddr,
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        #[arg(long, env = "CG_MESH_KEY", hide_env_values = true)]
        mesh_key: String,
        /// Base domain whose subdomains name tenants.
        #[arg(long, env = "CG_BASE_DOMAIN", default_value = "claimguardian.ai")]
        base_domain: String,
        #[arg(long, env = "CG_TENANCY_URL")]
        tenancy_url: String,
        #[arg(long, env = "CG_IDENTITY_URL")]
        identity_url: String,
        #[arg(long, env = "CG_BILLING_URL")]
        billing_url: String,
        #[arg(long, env = "CG_AUDIT_URL")]
        audit_url: String,
        #[arg(long, env = "CG_CLAIMS_URL")]
        claims_url: String,
        /// Redis that every gateway replica shares for rate limits
        /// (`redis://host:6379`); without it each gateway limits on its own.
        #[arg(long, env = "CG_RATE_LIMIT_REDIS", hide_env_values = true)]
        rate_limit_redis: Option<String>,
        #[command(flatten)]
        metrics: MetricsArgs,
    },
}

#[derive(Debug, Subcommand)]
enum OperatorCommand {
    /// Create a platform operator API key and print it (shown once).
    CreateKey {
        /// Who or what the key is for.
        #[arg(long, default_value = "operator")]
        label: String,
        #[arg(long, env = "CG_DATA_DIR", default_value = ".cg")]
        data_dir: PathBuf,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let telemetry = match Telemetry::from_env(&cli.service_name()) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(1);
        }
    };
    telemetry.install();
    let result = run(cli, &telemetry).await;
    telemetry.shutdown();
    if let Err(error) = result {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

impl Cli {
    /// The `service.name` of this process's telemetry.
    fn service_name(&self) -> String {
        match &self.command {
            Command::Serve {
                server: ServeCommand::Service { kind, .. },
            } => format!("claimguardian-{}", kind.name()),
            Command::Serve {
                server: ServeCommand::Gateway { .. },
            } => "claimguardian-gateway".to_owned(),
            _ => "claimguardian".to_owned(),
        }
    }
}

async fn run(cli: Cli, telemetry: &Telemetry) -> anyhow::Result<()> {
    match cli.command {
        Command::Up {
            demo,
            data_dir,
            host,
            port,
            any_ports,
            mail,
            metrics,
        } => {
            metrics.spawn(telemetry).await?;
            up(demo, &data_dir, host, port, any_ports, mail.config()).await
        }
        Command::Serve { server } => serve(server, telemetry).await,
        Command::Audit { command } => audit(command).await,
        Command::Migrate { data_dir } => {
            let database = Database::open(&data_dir).await?;
            println!("migrating {}", redact(database.url()));
            let result = database::migrate_all(database.url(), &mut PrintProgress).await;
            database.close().await?;
            result
        }
        Command::Operator {
            command: OperatorCommand::CreateKey { label, data_dir },
        } => {
            let database = Database::open(&data_dir).await?;
            let result = async {
                database::migrate_all(database.url(), &mut ()).await?;
                let pool = cg_db::connect_control(database.url(), 1).await?;
                let key = cg_identity::operator_keys::create(&pool, &label).await?;
                println!("{}", key.secret_key);
                eprintln!(
                    "operator key {} created; it is shown once, store it now",
                    key.id
                );
                anyhow::Ok(())
            }
            .await;
            database.close().await?;
            result
        }
    }
}

async fn up(
    seed_demo: bool,
    data_dir: &std::path::Path,
    host: IpAddr,
    port: u16,
    any_ports: bool,
    mail: MailConfig,
) -> anyhow::Result<()> {
    println!("starting PostgreSQL…");
    let database = Database::open(data_dir).await?;
    let result = async {
        println!("migrating…");
        database::migrate_all(database.url(), &mut PrintProgress).await?;
        let (signer, public_key) = audit_keys::load_or_create(data_dir)?;
        let secrets = secrets_key::load_or_create(data_dir)?;
        let mut deps = ServiceDeps::connect(
            database.url(),
            Arc::new(MeshKey::generate()),
            Arc::new(signer),
            secrets,
        )
        .await?;
        deps.identity.mail = mail;
        let demo_seed = if seed_demo {
            Some(demo::seed(&deps.control, &deps.tenant).await?)
        } else {
            None
        };
        let listen = Listen {
            host,
            gateway_port: if any_ports { 0 } else { port },
            service_ports: any_ports.then_some(0),
        };
        let mut running = platform::start(deps, &listen, GatewayConfig::default()).await?;
        println!();
        for (kind, addr) in &running.services {
            println!("  {:<9} {addr}", kind.name());
        }
        println!("  {:<9} {}", "gateway", running.gateway);
        println!("  audit public key: {}", public_key.display());
        if let Some(seed) = demo_seed {
            println!();
            if seed.created_organization {
                println!(
                    "Seeded the Enterprise organization `demo` (FL, GA, SC) with 3 properties."
                );
            }
            println!("Operator key (shown once): {}", seed.operator_key);
            println!("Try:");
            for call in demo::grpcurl_calls(running.gateway, &seed.operator_key) {
                println!("  {call}");
            }
        }
        println!();
        println!(
            "ClaimGuardian is up: gateway on {}. Press Ctrl-C to stop.",
            running.gateway
        );
        tokio::select! {
            _ = shutdown_requested() => {
                println!("stopping…");
                running.stop().await
            }
            error = running.wait_for_failure() => Err(error),
        }
    }
    .await;
    database.close().await?;
    if result.is_ok() {
        println!("stopped.");
    }
    result
}

async fn serve(server: ServeCommand, telemetry: &Telemetry) -> anyhow::Result<()> {
    match server {
        ServeCommand::Service {
            kind,
            listen,
            database_url,
            mesh_key,
            audit_signing_key_file,
            secrets_key,
            mail,
        } => {
            let key = Arc::new(MeshKey::parse(&mesh_key).context("CG_MESH_KEY")?);
            // Only the audit service signs; the others never hold the key.
            let signer = match (kind, audit_signing_key_file) {
                (ServiceKind::Audit, Some(path)) => audit_keys::load(&path)?,
                (ServiceKind::Audit, None) => anyhow::bail!(
                    "the audit service needs its signing key: set CG_AUDIT_SIGNING_KEY_FILE"
                ),
                _ => CheckpointSigner::generate(),
            };
            // Only identity opens sealed secrets; the others never hold the key.
            let secrets = match (kind, secrets_key) {
                (ServiceKind::Identity, Some(hex)) => {
                    SecretBox::from_hex(&hex).context("CG_SECRETS_KEY")?
                }
                (ServiceKind::Identity, None) => {
                    anyhow::bail!(
                        "the identity service needs the secrets key: set CG_SECRETS_KEY to 64 hex digits"
                    )
                }
                _ => SecretBox::generate(),
            };
            let mut deps =
                ServiceDeps::connect(&database_url, key, Arc::new(signer), secrets).await?;
            deps.identity.mail = mail.config();
            if kind == ServiceKind::Audit {
                tokio::spawn(deps.checkpointer());
            }
            if kind == ServiceKind::Identity {
                tokio::spawn(deps.mail_worker()?);
            }
            let server = GrpcServer::bind(kind.name(), listen).await?;
            server
                .serve(
                    platform::service_routes(kind, &deps)?,
                    &[kind.grpc_name()],
                    ServerLimits::default(),
                    shutdown_requested(),
                )
                .await
        }
        ServeCommand::Gateway {
            listen,
            database_url,
            mesh_key,
            base_domain,
            tenancy_url,
            identity_url,
            billing_url,
            audit_url,
            claims_url,
            rate_limit_redis,
            metrics,
        } => {
            metrics.spawn(telemetry).await?;
            let key = Arc::new(MeshKey::parse(&mesh_key).context("CG_MESH_KEY")?);
            let pool = cg_db::connect_control(&database_url, 10).await?;
            let mut upstreams = Upstreams::default();
            for (kind, url) in [
                (ServiceKind::Tenancy, tenancy_url),
                (ServiceKind::Identity, identity_url),
                (ServiceKind::Billing, billing_url),
                (ServiceKind::Audit, audit_url),
                (ServiceKind::Claims, claims_url),
            ] {
                upstreams.add(kind.grpc_name(), &url)?;
            }
            // An empty variable (as compose files pass them) means unset.
            let rate_limit_store = match rate_limit_redis.filter(|url| !url.trim().is_empty()) {
                Some(url) => {
                    let store = RedisStore::connect_lazy(&url)?;
                    tracing::info!(redis = store.address(), "rate limits shared through Redis");
                    RateLimitStore::Redis(store)
                }
                None => RateLimitStore::InProcess,
            };
            let config = GatewayConfig {
                base_domain,
                rate_limit_store,
                ..GatewayConfig::default()
            };
            let gateway = Gateway::new(config, upstreams, pool, key)?;
            let server = GrpcServer::bind("gateway", listen).await?;
            server
                .serve(
                    gateway.routes(),
                    &[],
                    ServerLimits::default(),
                    shutdown_requested(),
                )
                .await
        }
    }
}

async fn audit(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { file, public_key } => {
            let key_text = if std::path::Path::new(&public_key).exists() {
                std::fs::read_to_string(&public_key)
                    .with_context(|| format!("read {public_key}"))?
            } else {
                public_key
            };
            let verifier = CheckpointVerifier::parse(key_text.trim()).context("the public key")?;
            let export = if file.as_os_str() == "-" {
                read_export(std::io::stdin().lock())
            } else {
                let reader = std::fs::File::open(&file)
                    .with_context(|| format!("open {}", file.display()))?;
                read_export(std::io::BufReader::new(reader))
            }
            .context("read the export")?;
            let verification = verify_export(&export, &verifier);
            for chain in &verification.chains {
                let chain_name = chain
                    .organization_id
                    .map_or_else(|| "platform".to_owned(), |id| format!("organization {id}"));
                match &chain.report.problem {
                    None => println!(
                        "ok: {chain_name}: {} entries verified",
                        chain.report.entries_checked
                    ),
                    Some(problem) => println!(
                        "TAMPERED: {chain_name}: first bad entry {}: {problem}",
                        chain.report.first_bad_sequence.unwrap_or_default()
                    ),
                }
            }
            if verification.ok {
                Ok(())
            } else {
                std::process::exit(2);
            }
        }
        AuditCommand::Purge {
            organization,
            data_dir,
        } => {
            let database = Database::open(&data_dir).await?;
            let result = async {
                let pool = cg_db::connect_control(database.url(), 1).await?;
                let outcome = retention::purge_organization(&pool, &organization, chrono::Utc::now()).await?;
                match outcome.through_sequence {
                    Some(through) => println!(
                        "purged {} entries of {} (retention {} days, before {}); the chain now starts after checkpoint {through}",
                        outcome.deleted, organization, outcome.retention_days, outcome.cutoff
                    ),
                    None => println!(
                        "nothing to purge for {organization}: no checkpointed entry is older than {} days",
                        outcome.retention_days
                    ),
                }
                anyhow::Ok(())
            }
            .await;
            database.close().await?;
            result
        }
        AuditCommand::LegalHold {
            organization,
            state,
            data_dir,
        } => {
            let database = Database::open(&data_dir).await?;
            let result = async {
                let pool = cg_db::connect_control(database.url(), 1).await?;
                retention::set_legal_hold(&pool, &organization, state == "on").await?;
                println!("legal hold on {organization}: {state}");
                anyhow::Ok(())
            }
            .await;
            database.close().await?;
            result
        }
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_requested() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
}

/// A database URL without its password, for printing.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
