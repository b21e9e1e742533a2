//! The lab: one network namespace per host, each with a veth link to a
//! bridge that lives in a namespace of its own, on 10.77.0.0/24.
//!
//! Every name the lab creates starts with [`PREFIX`], so a run that died
//! without cleaning up is cleaned by the next one ([`remove_leftovers`]).
//! Dropping the [`Lab`] removes the namespaces, and with them their links,
//! firewall rules and any process still inside.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context as _, bail};

/// Every namespace the suite creates starts with this.
pub const PREFIX: &str = "rfault-";
/// The namespace holding the bridge.
const BRIDGE_NS: &str = "rfault-bridge";
/// Addresses of the hosts: 10.77.0.<HOST_BASE + index>.
const HOST_BASE: u8 = 10;

/// Run `ip` (or any command) and fail with its stderr when it fails.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}; is it installed (iproute2, iptables)?"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Names of the network namespaces that exist now.
fn namespaces() -> anyhow::Result<Vec<String>> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .context("cannot run `ip netns list`; install iproute2")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Kill every process inside `ns`, then delete it.
fn delete_namespace(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                // SAFETY: kill(2) with a pid read from the namespace; no memory involved.
                unsafe {
                    libc::kill(pid, libc::SIGCONT);
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
    if let Err(e) = run("ip", &["netns", "delete", ns]) {
        tracing::warn!(namespace = ns, error = %e, "could not delete a lab namespace; remove it with `ip netns delete`");
    }
}

/// Remove every namespace a previous run left behind.
pub fn remove_leftovers() -> anyhow::Result<usize> {
    let left: Vec<String> = namespaces()?
        .into_iter()
        .filter(|n| n.starts_with(PREFIX))
        .collect();
    for ns in &left {
        delete_namespace(ns);
    }
    Ok(left.len())
}

/// A handle on a network namespace that threads can enter.
#[derive(Clone, Debug)]
pub struct Netns {
    /// Its name under /run/netns.
    pub name: String,
    file: Arc<File>,
}

impl Netns {
    fn open(name: &str) -> anyhow::Result<Self> {
        let file = File::open(format!("/run/netns/{name}"))
            .with_context(|| format!("cannot open network namespace {name}"))?;
        Ok(Netns {
            name: name.to_string(),
            file: Arc::new(file),
        })
    }

    /// Move the calling thread into this namespace for good. Sockets the
    /// thread opens afterwards live there. Only for threads the suite
    /// spawned for that purpose; processes they spawn inherit it.
    pub fn enter(&self) -> std::io::Result<()> {
        // SAFETY: setns(2) on an open namespace file descriptor; it changes
        // only the calling thread's network namespace.
        let rc = unsafe { libc::setns(self.file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Run `f` on the calling thread inside this namespace, then move the
    /// thread back to the namespace it was in. Sockets `f` opens stay in
    /// this namespace.
    pub fn with<T>(&self, f: impl FnOnce() -> T) -> std::io::Result<T> {
        let home = File::open("/proc/thread-self/ns/net")?;
        self.enter()?;
        let out = f();
        // SAFETY: setns(2) back to the thread's own namespace, from an open descriptor.
        let rc = unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(out)
    }

    /// Run `f` on a fresh thread inside this namespace and return its result.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let ns = self.clone();
        std::thread::spawn(move || {
            ns.enter()?;
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("a thread in namespace {} panicked", self.name))?
    }

    /// Run a command inside this namespace.
    pub fn exec(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let mut full = vec!["netns", "exec", &self.name, program];
        full.extend_from_slice(args);
        run("ip", &full)
    }
}

/// One host of the lab.
#[derive(Clone, Debug)]
pub struct Host {
    /// Node name of the agent it runs.
    pub name: String,
    /// Its address on the lab network.
    pub ip: Ipv4Addr,
    /// Its namespace.
    pub ns: Netns,
}

/// Namespaces created so far; dropping this deletes them, last first.
struct Created(Vec<String>);

impl Drop for Created {
    fn drop(&mut self) {
        for ns in self.0.iter().rev() {
            delete_namespace(ns);
        }
    }
}

/// The namespaces, links and bridge of one run. Dropping it removes them.
pub struct Lab {
    /// The hosts that run agents.
    pub hosts: Vec<Host>,
    /// A host that runs no agent, for hostile traffic.
    pub outsider: Host,
    _created: Created,
}

impl Lab {
    /// Build `n` hosts (plus one outsider) on a fresh bridge.
    pub fn build(n: usize) -> anyhow::Result<Self> {
        if n == 0 || n > 200 {
            bail!("the lab holds 1 to 200 hosts, not {n}");
        }
        let mut created = Created(Vec::new());
        run("ip", &["netns", "add", BRIDGE_NS])?;
        created.0.push(BRIDGE_NS.to_string());
        run(
            "ip",
            &["-n", BRIDGE_NS, "link", "add", "br0", "type", "bridge"],
        )?;
        run("ip", &["-n", BRIDGE_NS, "link", "set", "br0", "up"])?;
        let mut hosts = Vec::new();
        for i in 0..n {
            hosts.push(add_host(
                &mut created,
                &format!("node-{i}"),
                HOST_BASE + i as u8,
            )?);
        }
        let outsider = add_host(&mut created, "outsider", 250)?;
        Ok(Lab {
            hosts,
            outsider,
            _created: created,
        })
    }
}

fn add_host(created: &mut Created, name: &str, last_octet: u8) -> anyhow::Result<Host> {
    let ns = format!("{PREFIX}{name}");
    run("ip", &["netns", "add", &ns])?;
    created.0.push(ns.clone());
    let port = format!("p{last_octet}");
    run(
        "ip",
        &[
            "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
            BRIDGE_NS,
        ],
    )?;
    let ip = Ipv4Addr::new(10, 77, 0, last_octet);
    run(
        "ip",
        &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
    )?;
    run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
    run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
    run(
        "ip",
        &["-n", BRIDGE_NS, "link", "set", &port, "master", "br0"],
    )?;
    run("ip", &["-n", BRIDGE_NS, "link", "set", &port, "up"])?;
    Ok(Host {
        name: name.to_string(),
        ip,
        ns: Netns::open(&ns)?,
    })
}
