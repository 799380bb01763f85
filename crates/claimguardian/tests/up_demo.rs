//! `claimguardian up --demo` as a user runs it: the real binary on its own
//! private PostgreSQL, every server answering reflection, the printed
//! grpcurl calls working exactly as printed, and Ctrl-C stopping it all.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const SERVERS: [(&str, &str); 5] = [
    ("tenancy", "claimguardian.tenancy.v1.TenancyService"),
    ("identity", "claimguardian.identity.v1.IdentityService"),
    ("billing", "claimguardian.billing.v1.BillingService"),
    ("audit", "claimguardian.audit.v1.AuditService"),
    ("claims", "claimguardian.claims.v1.ClaimsService"),
];

struct Up {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Up {
    fn start(data_dir: &Path) -> Up {
        let mut child = Command::new(env!("CARGO_BIN_EXE_claimguardian"))
            .args(["up", "--demo", "--any-ports", "--data-dir"])
            .arg(data_dir)
            .env_remove("DATABASE_URL")
            .env("CG_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start claimguardian up --demo");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Up {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads output until a line contains `needle`.
    fn wait_for(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.seen.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "no line with {needle:?} within {within:?}; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn address_of(&self, server: &str) -> String {
        self.seen
            .iter()
            .find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some(server))
                    .then(|| words.next().map(str::to_owned))
                    .flatten()
            })
            .unwrap_or_else(|| panic!("no address printed for {server}"))
    }

    fn grpcurl_calls(&self) -> Vec<String> {
        self.seen
            .iter()
            .map(|l| l.trim())
            .filter(|l| l.starts_with("grpcurl "))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn grpcurl_available() {
    let found = Command::new("grpcurl").arg("-version").output().is_ok();
    assert!(
        found,
        "grpcurl not found: install it with `python3 -m pip install -r tests/requirements.txt`"
    );
}

fn run_shell(line: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(line)
        .output()
        .expect("run sh")
}

#[test]
fn up_demo_serves_reflection_runs_the_printed_calls_and_stops_on_ctrl_c() {
    grpcurl_available();
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut up = Up::start(data_dir.path());
    up.wait_for("ClaimGuardian is up", Duration::from_secs(120));

    // Every server lists its services through reflection.
    for (server, service) in SERVERS {
        let out = run_shell(&format!(
            "grpcurl -plaintext {} list",
            up.address_of(server)
        ));
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && listed.contains(service),
            "{server} lists:\n{listed}"
        );
        assert!(
            listed.contains("grpc.health.v1.Health"),
            "{server} lists:\n{listed}"
        );
    }
    let out = run_shell(&format!(
        "grpcurl -plaintext {} list",
        up.address_of("gateway")
    ));
    let listed = String::from_utf8_lossy(&out.stdout);
    for (_, service) in SERVERS {
        assert!(listed.contains(service), "gateway lists:\n{listed}");
    }

    // The printed calls work exactly as printed.
    let calls = up.grpcurl_calls();
    assert!(calls.len() >= 4, "printed calls: {calls:?}");
    for call in &calls {
        let out = run_shell(call);
        assert!(
            out.status.success(),
            "{call}\nfailed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed = run_shell(
        calls
            .iter()
            .find(|c| c.contains("ListProperties"))
            .expect("a ListProperties call"),
    );
    let listed = String::from_utf8_lossy(&listed.stdout);
    for seeded in [
        "Beach house",
        "Atlanta office",
        "Charleston rental",
        "Lake cabin",
    ] {
        assert!(listed.contains(seeded), "{seeded} missing from:\n{listed}");
    }

    let verified = run_shell(
        calls
            .iter()
            .find(|c| c.contains("VerifyAuditChain"))
            .expect("a VerifyAuditChain call"),
    );
    let verified = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.contains("\"ok\": true"),
        "the demo's audit chain does not verify:\n{verified}"
    );

    // Ctrl-C stops every server and the private PostgreSQL.
    let pid_file = data_dir.path().join("postgres/postmaster.pid");
    assert!(pid_file.exists(), "PostgreSQL runs in the data directory");
    kill(Pid::from_raw(up.child.id() as i32), Signal::SIGINT).expect("send SIGINT");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = up.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "still running 60 s after Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "exit status {status}");
    up.wait_for("stopped.", Duration::from_secs(5));
    assert!(!pid_file.exists(), "PostgreSQL still running after Ctrl-C");
}
