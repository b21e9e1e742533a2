//! A network namespace of one run's own: only its traffic on its loopback,
//! and random loss on its INPUT hook. Removed when dropped.

use std::process::Command;

use anyhow::{Context, Result, bail};

/// Prefix of every namespace the benchmarks create.
const PREFIX: &str = "rbench-";

/// A network namespace with its loopback up.
pub struct Namespace {
    name: String,
}

fn ip(args: &[&str]) -> Result<()> {
    let status = Command::new("ip")
        .args(args)
        .status()
        .context("running ip(8): install iproute2")?;
    if !status.success() {
        bail!(
            "`ip {}` failed ({status}); the benchmarks need root for network namespaces",
            args.join(" ")
        );
    }
    Ok(())
}

impl Namespace {
    /// Create a namespace for run `tag` of this process; `loss` (0 to 1)
    /// drops that share of the packets arriving at any socket in it.
    pub fn create(tag: &str, loss: f64) -> Result<Self> {
        let name = format!("{PREFIX}{}-{tag}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Namespace { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        if loss > 0.0 {
            let probability = format!("{loss}");
            let status = Command::new("ip")
                .args(["netns", "exec", &ns.name, "iptables", "-w", "-A", "INPUT"])
                .args([
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &probability,
                ])
                .args(["-j", "DROP"])
                .status()
                .context("running iptables: install iptables")?;
            if !status.success() {
                bail!(
                    "adding the loss rule in namespace {} failed ({status})",
                    ns.name
                );
            }
        }
        Ok(ns)
    }

    /// The command line prefix that runs a program inside the namespace.
    pub fn exec_prefix(&self) -> Vec<String> {
        vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.name.clone(),
        ]
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            tracing::warn!(
                "could not remove network namespace {}: {e}; remove it with `ip netns del {}`",
                self.name,
                self.name
            );
        }
    }
}

/// Remove namespaces that earlier runs of the benchmarks left behind (a
/// process killed before it could clean up), whose owning process is gone.
pub fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}
