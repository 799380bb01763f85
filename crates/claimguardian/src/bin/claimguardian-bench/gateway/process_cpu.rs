//! CPU time processes have used (user + system, all threads), from
//! `/proc/<pid>/stat`: read before and after a phase, the difference divided
//! by the calls of the phase is the CPU each call cost that process.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

/// Clock ticks per second of `utime`/`stime` (`USER_HZ`).
fn ticks_per_second() -> anyhow::Result<u64> {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .context("sysconf(CLK_TCK)")?
        .context("CLK_TCK is not set")?;
    u64::try_from(ticks).context("CLK_TCK")
}

/// The fields after the command name, which may itself hold spaces and
/// parentheses: field 3 (`state`) is the first.
fn fields_after_command(stat: &str) -> anyhow::Result<Vec<&str>> {
    let (_, rest) = stat
        .rsplit_once(')')
        .context("/proc/<pid>/stat without a command name")?;
    Ok(rest.split_whitespace().collect())
}

/// `(ppid, utime + stime in ticks)` of one process.
fn parent_and_ticks(pid: u32) -> anyhow::Result<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    let fields = fields_after_command(&stat)?;
    // Fields 4 (ppid), 14 (utime) and 15 (stime), counted from 1.
    let field = |n: usize| -> anyhow::Result<u64> {
        fields
            .get(n - 3)
            .with_context(|| format!("/proc/{pid}/stat has no field {n}"))?
            .parse::<u64>()
            .with_context(|| format!("/proc/{pid}/stat field {n}"))
    };
    let ppid = u32::try_from(field(4)?).context("ppid")?;
    Ok((ppid, field(14)? + field(15)?))
}

fn ticks_to_duration(ticks: u64) -> anyhow::Result<Duration> {
    let per_second = ticks_per_second()?;
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / per_second))
}

/// CPU time `pid` has used so far.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    ticks_to_duration(parent_and_ticks(pid)?.1)
}

/// CPU time `pid` and its living children have used so far: PostgreSQL's
/// postmaster and its backends. A backend that exits during a phase takes
/// its time with it, so pooled connections (which live on) are what this
/// measures well.
pub fn cpu_time_with_children(pid: u32) -> anyhow::Result<Duration> {
    let mut ticks = parent_and_ticks(pid)?.1;
    for entry in std::fs::read_dir("/proc").context("read /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may exit between the listing and the read.
        if let Ok((ppid, child_ticks)) = parent_and_ticks(child)
            && ppid == pid
        {
            ticks += child_ticks;
        }
    }
    ticks_to_duration(ticks)
}

/// The postmaster's pid, from the first line of `postmaster.pid`.
pub fn postmaster_pid(data_dir: &Path) -> anyhow::Result<u32> {
    let file = data_dir.join("postmaster.pid");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
    text.lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .with_context(|| format!("{} holds no pid", file.display()))
}
