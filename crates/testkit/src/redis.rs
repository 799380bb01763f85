//! A throwaway Redis server per test: `redis-server` on a free loopback
//! port, nothing persisted, killed on drop. A test owns its server, so it
//! can stop and restart it to show what happens during an outage.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first PING.
const STARTUP: Duration = Duration::from_secs(10);

/// A running `redis-server` (the one on `PATH`, or `REDIS_SERVER`).
#[derive(Debug)]
pub struct TestRedis {
    port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl TestRedis {
    /// Starts a server on a free port; panics with what to install when
    /// `redis-server` is missing.
    pub fn start() -> TestRedis {
        let mut last_log = String::new();
        // A port found free can be taken before the server binds it.
        for _ in 0..3 {
            let mut redis = TestRedis {
                port: free_port(),
                child: None,
                log: PathBuf::new(),
            };
            match redis.launch() {
                Ok(()) => return redis,
                Err(log) => last_log = log,
            }
        }
        panic!("redis-server did not start; its log:\n{last_log}");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server at once (as a crash would); its data is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts an empty server again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + STARTUP;
        loop {
            match self.launch() {
                Ok(()) => return,
                // The old socket may linger for a moment.
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(log) => panic!(
                    "redis-server did not restart on {}; its log:\n{log}",
                    self.port
                ),
            }
        }
    }

    /// Spawns the server and waits for its PONG; on failure, its log.
    fn launch(&mut self) -> Result<(), String> {
        let binary = std::env::var_os("REDIS_SERVER").unwrap_or_else(|| "redis-server".into());
        self.log = std::env::temp_dir().join(format!(
            "cg-testkit-redis-{}-{}.log",
            std::process::id(),
            self.port
        ));
        let log = std::fs::File::create(&self.log)
            .unwrap_or_else(|error| panic!("create {}: {error}", self.log.display()));
        let child = Command::new(&binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            // A cache for tests: nothing written to disk.
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run `{}` ({error}): the rate-limit tests need a Redis server; \
                     install it (Debian/Ubuntu: `apt-get install redis-server`) or set \
                     REDIS_SERVER to its path",
                    binary.to_string_lossy()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP;
        while Instant::now() < deadline {
            if self.pong() {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .is_some_and(|child| child.try_wait().ok().flatten().is_some());
            if exited {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        Err(std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    fn pong(&self) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut answer = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|error| panic!("find a free loopback port: {error}"))
}
