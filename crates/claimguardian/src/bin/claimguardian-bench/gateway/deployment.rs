//! The platform as `deploy/` runs it: every service and the gateway as its
//! own `claimguardian serve` process on loopback, sharing one database and
//! mesh key, so each process's CPU time can be read on its own.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cg_context::MeshKey;
use claimguardian::platform::ServiceKind;
use tonic::transport::{Channel, Endpoint};

/// One server process.
#[derive(Debug, Clone)]
pub struct Server {
    pub pid: u32,
    /// `127.0.0.1:port`.
    pub addr: String,
}

/// The running processes; they are killed when this is dropped.
#[derive(Debug)]
pub struct Deployment {
    pub gateway: Server,
    pub identity: Server,
    pub claims: Server,
    children: Vec<Child>,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `claimguardian` binary: `explicit`, else the one beside this benchmark
/// (`cargo build --release -p claimguardian --bins` builds both).
pub fn server_binary(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(path) => path,
        None => std::env::current_exe()
            .context("locate this benchmark")?
            .with_file_name("claimguardian"),
    };
    anyhow::ensure!(
        path.is_file(),
        "no claimguardian binary at {}: build it first (`cargo build --release -p claimguardian --bins`) or pass --server",
        path.display()
    );
    Ok(path)
}

fn free_addr() -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.to_string())
}

impl Deployment {
    /// Starts the five services and one gateway, and waits until each listens.
    /// Their logs go to `<log_dir>/<name>.log`.
    pub async fn start(
        binary: &Path,
        database_url: &str,
        mesh_key: &MeshKey,
        key_dir: &Path,
        log_dir: &Path,
    ) -> anyhow::Result<Deployment> {
        // Creates the audit service's signing key file.
        claimguardian::audit_keys::load_or_create(key_dir)?;
        let common = [
            ("DATABASE_URL".to_owned(), database_url.to_owned()),
            ("CG_MESH_KEY".to_owned(), mesh_key.to_hex()),
            ("CG_SECRETS_KEY".to_owned(), MeshKey::generate().to_hex()),
            (
                "CG_AUDIT_SIGNING_KEY_FILE".to_owned(),
                key_dir
                    .join(claimguardian::audit_keys::SIGNING_KEY_FILE)
                    .display()
                    .to_string(),
            ),
        ];
        let mut children = Vec::new();
        let mut gateway_env = common.to_vec();
        let mut servers = Vec::new();
        for kind in ServiceKind::ALL {
            let addr = free_addr()?;
            let mut env = common.to_vec();
            env.push(("CG_LISTEN".to_owned(), addr.clone()));
            let child = spawn(
                binary,
                &["service", kind.name()],
                &env,
                log_dir,
                kind.name(),
            )?;
            servers.push((
                kind,
                Server {
                    pid: child.id(),
                    addr: addr.clone(),
                },
            ));
            children.push(child);
            gateway_env.push((
                format!("CG_{}_URL", kind.name().to_uppercase()),
                format!("http://{addr}"),
            ));
        }
        let gateway_addr = free_addr()?;
        gateway_env.push(("CG_LISTEN".to_owned(), gateway_addr.clone()));
        let child = spawn(binary, &["gateway"], &gateway_env, log_dir, "gateway")?;
        let gateway = Server {
            pid: child.id(),
            addr: gateway_addr,
        };
        children.push(child);
        let server = |wanted: ServiceKind| {
            servers
                .iter()
                .find(|(kind, _)| *kind == wanted)
                .map(|(_, server)| server.clone())
                .context("every service was started")
        };
        let mut deployment = Deployment {
            gateway,
            identity: server(ServiceKind::Identity)?,
            claims: server(ServiceKind::Claims)?,
            children,
        };
        for (_, server) in &servers {
            deployment.wait_until_listening(&server.addr).await?;
        }
        deployment
            .wait_until_listening(&deployment.gateway.addr.clone())
            .await?;
        Ok(deployment)
    }

    async fn wait_until_listening(&mut self, addr: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            for child in &mut self.children {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("a server process exited during startup ({status}); see its log");
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "{addr} never started listening");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn spawn(
    binary: &Path,
    args: &[&str],
    env: &[(String, String)],
    log_dir: &Path,
    name: &str,
) -> anyhow::Result<Child> {
    let log = std::fs::File::create(log_dir.join(format!("{name}.log")))
        .with_context(|| format!("create the log of {name}"))?;
    Command::new(binary)
        .arg("serve")
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("start {} serve {}", binary.display(), args.join(" ")))
}

/// `connections` separate HTTP/2 connections to `addr`, each established
/// before it is returned, with Nagle off as the gateway's own upstreams.
pub async fn connect(addr: &str, connections: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("connect to {addr}"))?;
        channels.push(channel);
    }
    Ok(channels)
}
