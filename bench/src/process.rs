//! What a process costs: CPU seconds and peak resident memory from /proc. For the bench process itself
//! everything in-process counts (the service, the HTTP receiver, the writers, the plugin runtime); a
//! PostgreSQL server or a `plant-monitor` child is another process, read by its pid.

use std::time::Duration;

/// Linux reports /proc times in USER_HZ, which is 100 on every architecture it exposes it for.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time (user + system) this process has used so far.
pub fn cpu() -> anyhow::Result<Duration> {
    cpu_of("self")
}

/// CPU time (user + system) process `pid` (a number, or `self`) has used so far.
pub fn cpu_of(pid: &str) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |index: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(index)
            .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/stat is short"))?
            .parse::<f64>()?)
    };
    Ok(Duration::from_secs_f64(
        (ticks(11)? + ticks(12)?) / TICKS_PER_SECOND,
    ))
}

/// This process's peak resident set size since start or the last [`reset_peak_rss`], from /proc.
pub fn peak_rss_kib() -> anyhow::Result<u64> {
    peak_rss_kib_of("self")
}

/// The peak resident set size of process `pid` (a number, or `self`).
pub fn peak_rss_kib_of(pid: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/{pid}/status"))
}

/// Starts the peak resident set size afresh (writing 5 to clear_refs), so a phase of a longer run
/// reports its own peak rather than an earlier phase's.
pub fn reset_peak_rss() -> anyhow::Result<()> {
    Ok(std::fs::write("/proc/self/clear_refs", "5")?)
}

/// CPU seconds and peak RSS over one phase of a run.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub cpu: Duration,
    pub peak_rss_kib: u64,
}

/// Measures what `phase` costs the process.
pub async fn usage_of<T>(
    phase: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, Usage)> {
    reset_peak_rss()?;
    let before = cpu()?;
    let value = phase.await?;
    Ok((
        value,
        Usage {
            cpu: cpu()?.saturating_sub(before),
            peak_rss_kib: peak_rss_kib()?,
        },
    ))
}
