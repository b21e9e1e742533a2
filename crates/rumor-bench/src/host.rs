//! What the host says about traffic, CPU time and memory (Linux `/proc`).

use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Bytes and packets sent.
#[derive(Clone, Copy, Debug)]
pub struct Traffic {
    /// Bytes, link and IP headers included.
    pub bytes: u64,
    /// Packets.
    pub packets: u64,
}

/// What the loopback interface of this process's network namespace sent.
pub fn loopback_sent() -> Result<Traffic> {
    let dev = std::fs::read_to_string("/proc/net/dev").context("reading /proc/net/dev")?;
    for line in dev.lines() {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() != "lo" {
            continue;
        }
        let fields: Vec<u64> = counters
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        if fields.len() < 10 {
            bail!("/proc/net/dev has too few columns for lo: {line}");
        }
        return Ok(Traffic {
            bytes: fields[8],
            packets: fields[9],
        });
    }
    bail!("no loopback interface in /proc/net/dev")
}

fn ticks_per_second() -> u64 {
    // The kernel's USER_HZ is 100 on every Linux architecture that matters.
    100
}

/// CPU time (user and system) the processes used so far; processes gone
/// count nothing.
pub fn cpu_time(pids: &[u32]) -> Result<Duration> {
    let mut ticks = 0u64;
    for pid in pids {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name, which sits in parentheses.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15; `rest` starts at field 3.
        let field = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
        ticks += field(14).unwrap_or(0) + field(15).unwrap_or(0);
    }
    Ok(Duration::from_millis(ticks * 1000 / ticks_per_second()))
}

/// Resident memory of the processes, in bytes.
pub fn rss_bytes(pids: &[u32]) -> Result<u64> {
    let mut total = 0;
    for pid in pids {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        if let Some(kib) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            total += kib * 1024;
        }
    }
    Ok(total)
}
