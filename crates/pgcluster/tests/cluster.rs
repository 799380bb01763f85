//! Starts real throwaway clusters from the local PostgreSQL server binaries.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cg_pgcluster::{ClusterOptions, PgCluster, PgClusterError, ServerBinaries};

/// Set (to a data directory) in the child process of the watchdog test.
const CHILD_ENV: &str = "CG_PGCLUSTER_WATCHDOG_CHILD_DATA_DIR";

fn binaries() -> ServerBinaries {
    ServerBinaries::locate().expect("PostgreSQL server binaries are installed")
}

fn accepts_tcp(port: u16) -> bool {
    TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(2)).is_ok()
}

fn pid_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("postmaster.pid")
}

async fn select_one(url: &str) -> Result<i32, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    let row = client.query_one("select 1", &[]).await?;
    drop(client);
    let _ = connection.await;
    Ok(row.get(0))
}

/// `select 1` through psql, when psql is installed.
fn psql_select_one(binaries: &ServerBinaries, cluster: &PgCluster) -> Option<String> {
    let psql = binaries.psql()?;
    let output = Command::new(psql)
        .args(["-X", "-w", "-t", "-A", "-h", "127.0.0.1", "-U", "postgres"])
        .arg("-p")
        .arg(cluster.port().to_string())
        .args(["-d", "postgres", "-c", "select 1"])
        .env("PGPASSWORD", cluster.password())
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output()
        .expect("run psql");
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[tokio::test]
async fn ephemeral_cluster_serves_and_stops_cleanly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("data");
    let binaries = binaries();
    let cluster = PgCluster::start(&binaries, ClusterOptions::ephemeral(&data_dir))
        .await
        .expect("start cluster");
    let port = cluster.port();

    assert!(accepts_tcp(port), "port {port} accepts connections");
    let url = cluster.url("postgres");
    assert_eq!(
        url,
        format!(
            "postgres://postgres:{}@127.0.0.1:{port}/postgres",
            cluster.password()
        )
    );
    assert_eq!(select_one(&url).await.expect("select 1"), 1);
    if let Some(answer) = psql_select_one(&binaries, &cluster) {
        assert_eq!(answer, "1");
    }
    let wrong = format!("postgres://postgres:wrong@127.0.0.1:{port}/postgres");
    assert!(
        select_one(&wrong).await.is_err(),
        "a wrong password is refused"
    );
    let socket_dir = cluster
        .socket_dir()
        .expect("short tempdir path gets a socket");
    assert!(socket_dir.join(format!(".s.PGSQL.{port}")).exists());
    assert!(pid_file(&data_dir).exists());

    cluster.stop().await.expect("stop cluster");
    assert!(
        !pid_file(&data_dir).exists(),
        "no postmaster.pid after stop"
    );
    assert!(!accepts_tcp(port), "nothing listens after stop");
}

#[tokio::test]
async fn restart_reuses_cluster_and_password() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("data");
    let binaries = binaries();

    let first = PgCluster::start(&binaries, ClusterOptions::durable(&data_dir))
        .await
        .expect("first start");
    let password = first.password().to_owned();
    let client_url = first.url("postgres");
    let (client, connection) = tokio_postgres::connect(&client_url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let connection = tokio::spawn(connection);
    client
        .batch_execute("create table kept (v int); insert into kept values (42)")
        .await
        .expect("create table");
    drop(client);
    let _ = connection.await;
    first.stop().await.expect("first stop");

    let second = PgCluster::start(&binaries, ClusterOptions::durable(&data_dir))
        .await
        .expect("second start");
    assert_eq!(second.password(), password, "the password is reused");
    let (client, connection) =
        tokio_postgres::connect(&second.url("postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect again");
    let connection = tokio::spawn(connection);
    let row = client
        .query_one("select v from kept", &[])
        .await
        .expect("data survived the restart");
    assert_eq!(row.get::<_, i32>(0), 42);
    drop(client);
    let _ = connection.await;
    second.stop().await.expect("second stop");
    assert!(!pid_file(&data_dir).exists());
}

#[tokio::test]
async fn dropping_the_cluster_stops_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("data");
    let cluster = PgCluster::start(&binaries(), ClusterOptions::ephemeral(&data_dir))
        .await
        .expect("start cluster");
    let port = cluster.port();
    drop(cluster);
    assert!(
        !pid_file(&data_dir).exists(),
        "no postmaster.pid after drop"
    );
    assert!(!accepts_tcp(port));
}

#[tokio::test]
async fn a_cluster_in_use_is_not_started_twice() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("data");
    let binaries = binaries();
    let cluster = PgCluster::start(&binaries, ClusterOptions::ephemeral(&data_dir))
        .await
        .expect("start cluster");

    let second = PgCluster::start(&binaries, ClusterOptions::ephemeral(&data_dir)).await;
    match second {
        Err(error @ PgClusterError::ClusterInUse { .. }) => {
            assert!(error.to_string().contains("still running"), "{error}");
        }
        other => panic!("expected ClusterInUse, got {other:?}"),
    }
    assert_eq!(
        select_one(&cluster.url("postgres"))
            .await
            .expect("still serving"),
        1
    );
    cluster.stop().await.expect("stop");
}

#[tokio::test]
async fn a_server_left_by_a_dead_process_is_replaced() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("data");
    let binaries = binaries();
    let orphan = PgCluster::start(&binaries, ClusterOptions::ephemeral(&data_dir))
        .await
        .expect("start cluster");
    let orphan_port = orphan.port();
    // Pretend the starting process died without stopping it (its watchdog
    // stays armed until this test process ends, which is harmless).
    let mut gone = Command::new("true").spawn().expect("spawn true");
    let dead_pid = gone.id();
    gone.wait().expect("reap true");
    std::fs::write(data_dir.join("cg-owner.pid"), format!("{dead_pid}\n")).expect("owner file");
    std::mem::forget(orphan);

    let cluster = PgCluster::start(&binaries, ClusterOptions::ephemeral(&data_dir))
        .await
        .expect("start replaces the leftover server");
    assert!(!accepts_tcp(orphan_port) || cluster.port() == orphan_port);
    assert_eq!(
        select_one(&cluster.url("postgres"))
            .await
            .expect("select 1"),
        1
    );
    cluster.stop().await.expect("stop");
    assert!(!pid_file(&data_dir).exists());
}

#[tokio::test]
async fn a_failed_start_reports_the_server_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("data");
    let options = ClusterOptions {
        max_connections: 0,
        ..ClusterOptions::ephemeral(&data_dir)
    };
    match PgCluster::start(&binaries(), options).await {
        Err(error @ PgClusterError::StartFailed { .. }) => {
            let message = error.to_string();
            assert!(message.contains("max_connections"), "{message}");
        }
        other => panic!("expected StartFailed, got {other:?}"),
    }
    assert!(!pid_file(&data_dir).exists());
}

/// Runs in a child process (see below): starts a cluster, reports its port
/// and waits to be killed. A no-op in a normal test run.
#[test]
fn watchdog_child_process() {
    let Some(data_dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let cluster = PgCluster::start_blocking(&binaries(), ClusterOptions::ephemeral(data_dir))
        .expect("child starts cluster");
    println!("READY {}", cluster.port());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[test]
fn watchdog_stops_the_cluster_when_its_process_is_killed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("data");
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "watchdog_child_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child test process");
    let stdout = child.stdout.take().expect("child stdout");
    let port = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        // libtest may have printed "test watchdog_child_process ... " first.
        .find_map(|line| {
            line.rsplit_once("READY ")
                .and_then(|(_, port)| port.trim().parse::<u16>().ok())
        });
    let Some(port) = port else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("child process did not start a cluster");
    };
    assert!(accepts_tcp(port));
    assert!(pid_file(&data_dir).exists());

    // SIGKILL: no destructor runs in the child.
    child.kill().expect("kill child");
    child.wait().expect("reap child");

    let deadline = Instant::now() + Duration::from_secs(30);
    while pid_file(&data_dir).exists() || accepts_tcp(port) {
        assert!(
            Instant::now() < deadline,
            "the server outlived its process by 30s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
