//! Runs the OpenID providers of `tests/oidc` with Node: `provider.mjs`
//! (npm `oidc-provider`) and `bad-provider.mjs` (mints bad ID tokens). Each
//! listens on a port of its own, announced as the first stdout line
//! `listening http://127.0.0.1:PORT`; the process is killed on drop (and
//! exits by itself when our end of its stdin closes).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// How long a provider may take to announce its port.
const STARTUP: Duration = Duration::from_secs(20);

/// The repository root: the ancestor of this crate holding `tests/oidc`.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("tests/oidc/package.json").is_file())
        .expect("tests/oidc/package.json above CARGO_MANIFEST_DIR")
        .to_path_buf()
}

/// A running provider.
#[derive(Debug)]
pub struct NodeProvider {
    /// `http://127.0.0.1:PORT`, also the issuer.
    pub issuer: String,
    child: Child,
    _stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<String>>,
}

/// Client registration shared by both providers.
#[derive(Debug, Clone)]
pub struct ClientRegistration {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    pub email_domain: String,
}

impl NodeProvider {
    /// `tests/oidc/provider.mjs`: oidc-provider with this client.
    pub fn real(client: &ClientRegistration) -> NodeProvider {
        let root = repo_root();
        if !root.join("tests/oidc/node_modules/oidc-provider").is_dir() {
            panic!(
                "the OpenID provider's npm packages are not installed; run from {}:\n    \
                 npm ci --prefix tests/oidc",
                root.display()
            );
        }
        NodeProvider::start(
            "provider.mjs",
            &[
                ("--client-id", &client.client_id),
                ("--client-secret", &client.client_secret),
                ("--redirect-uri", &client.redirect_uri),
                ("--email-domain", &client.email_domain),
            ],
        )
    }

    /// `tests/oidc/bad-provider.mjs`: node built-ins only.
    pub fn bad(client: &ClientRegistration) -> NodeProvider {
        NodeProvider::start(
            "bad-provider.mjs",
            &[
                ("--client-id", &client.client_id),
                ("--client-secret", &client.client_secret),
                ("--email-domain", &client.email_domain),
            ],
        )
    }

    fn start(script: &str, options: &[(&str, &str)]) -> NodeProvider {
        let node = std::env::var_os("NODE").unwrap_or_else(|| "node".into());
        let dir = repo_root().join("tests/oidc");
        let mut command = Command::new(&node);
        command
            .arg(dir.join(script))
            .args(["--port", "0"])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (option, value) in options {
            command.arg(option).arg(value);
        }
        let mut child = command.spawn().unwrap_or_else(|error| {
            panic!(
                "cannot run `{}` ({error}): install Node.js 20 or later, or set NODE",
                node.to_string_lossy()
            )
        });

        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                if let Ok(mut text) = sink.lock() {
                    text.push_str(&String::from_utf8_lossy(&buffer[..n]));
                }
            }
        });

        let out_pipe = child.stdout.take().expect("piped stdout");
        let (announce, announced) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out_pipe).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("listening ") {
                    let _ = announce.send(url.trim().to_owned());
                    break;
                }
            }
            // Keep draining so the pipe never fills.
            for _ in lines {}
        });

        let stdin = child.stdin.take();
        let mut provider = NodeProvider {
            issuer: String::new(),
            child,
            _stdin: stdin,
            stderr,
        };
        match announced.recv_timeout(STARTUP) {
            Ok(issuer) => provider.issuer = issuer,
            Err(_) => {
                let status = provider.child.try_wait().ok().flatten();
                panic!(
                    "{script} did not announce `listening http://…` within {STARTUP:?} \
                     (exit status {status:?}); its stderr:\n{}",
                    provider.stderr()
                );
            }
        }
        provider
    }

    /// What the provider wrote to stderr so far (for failure messages).
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .map(|text| text.clone())
            .unwrap_or_default()
    }
}

impl Drop for NodeProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
