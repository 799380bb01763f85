//! A child process that stops the cluster once the process that started it
//! is gone.
//!
//! Why: the server is a separate process tree (pg_ctl detaches it into its
//! own session), so it would happily outlive whoever started it. `Drop` is
//! not enough: a process killed with SIGKILL, a panic with `panic = abort`,
//! `std::process::exit`, or a test binary (whose statics are never dropped)
//! all end without running destructors, and every such run would leave a
//! server behind holding a port, shared memory and the data directory.
//!
//! How: the watchdog is `/bin/sh` blocked reading its stdin, a pipe whose
//! only write end this process holds. However this process ends, the kernel
//! closes that end, `read` returns, and the shell execs
//! `pg_ctl stop -m immediate` (as the service user when we are root). A
//! normal stop disarms the watchdog by killing it first. Unlike polling
//! `kill -0 $PARENT`, this reacts at once, needs no permission to signal
//! the parent, and cannot be fooled by a reused process id. The watchdog
//! runs in its own process group so a Ctrl-C at the terminal, meant for
//! the parent, does not kill it too.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::PgClusterError;

/// Waits for EOF on stdin, then runs its arguments. HUP and INT are ignored
/// so that the end of a terminal session does not end the watchdog early.
const SCRIPT: &str = "trap '' HUP INT; read -r _ignored; exec \"$@\"";

/// An armed watchdog; dropping it disarms it.
#[derive(Debug)]
pub(crate) struct Watchdog {
    child: Child,
    /// Held open until this process ends (or the watchdog is disarmed).
    _pipe: Option<ChildStdin>,
}

impl Watchdog {
    /// Starts a watchdog that runs `stop_argv` (program first) when this
    /// process ends.
    pub(crate) fn arm(stop_argv: &[OsString]) -> Result<Watchdog, PgClusterError> {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("cg-pgcluster-watchdog")
            .args(stop_argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/")
            .process_group(0)
            .spawn()
            .map_err(|error| PgClusterError::io("starting the cluster watchdog", error))?;
        let pipe = child.stdin.take();
        Ok(Watchdog { child, _pipe: pipe })
    }
}

impl Drop for Watchdog {
    /// Kills the watchdog before closing its pipe, so it does not stop the
    /// cluster, and reaps it.
    fn drop(&mut self) {
        if let Err(error) = self.child.kill() {
            tracing::warn!(%error, "could not kill the cluster watchdog");
        }
        let _ = self.child.wait();
    }
}
