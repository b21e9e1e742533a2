//! Faults injected with iptables inside a host's namespace.
//!
//! Every rule sits in the chain [`CHAIN`], reached from INPUT for packets
//! that arrive on the lab link (`eth0`), so loopback (where the HTTP API
//! listens) is never touched and [`Firewall::clear`] heals every fault of
//! the host at once. Drops are on INPUT: a drop on OUTPUT would make the
//! sender's `sendto()` fail with EPERM, a local error rather than loss.

use std::net::Ipv4Addr;

use crate::netns::Host;

/// The suite's chain in each host's filter table.
const CHAIN: &str = "rfault";

/// The iptables rules of one host.
pub struct Firewall<'a> {
    host: &'a Host,
}

impl<'a> Firewall<'a> {
    /// Rules of `host`.
    pub fn of(host: &'a Host) -> Self {
        Firewall { host }
    }

    fn iptables(&self, args: &[&str]) -> anyhow::Result<()> {
        self.host.ns.exec("iptables", args)
    }

    /// Create the chain and hook it into INPUT for the lab link.
    pub fn install(&self) -> anyhow::Result<()> {
        self.iptables(&["-N", CHAIN])?;
        self.iptables(&["-A", "INPUT", "-i", "eth0", "-j", CHAIN])
    }

    /// Remove every fault of this host.
    pub fn clear(&self) -> anyhow::Result<()> {
        self.iptables(&["-F", CHAIN])
    }

    /// Drop a random `fraction` of the packets arriving from anywhere
    /// (`from = None`) or from one peer.
    pub fn loss(&self, from: Option<Ipv4Addr>, fraction: f64) -> anyhow::Result<()> {
        let p = format!("{fraction:.4}");
        let mut args = vec!["-A", CHAIN];
        let src;
        if let Some(ip) = from {
            src = ip.to_string();
            args.extend(["-s", &src]);
        }
        args.extend([
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            &p,
            "-j",
            "DROP",
        ]);
        self.iptables(&args)
    }

    /// Drop everything arriving from `from`: this host no longer hears it.
    pub fn block(&self, from: Ipv4Addr) -> anyhow::Result<()> {
        self.iptables(&["-A", CHAIN, "-s", &from.to_string(), "-j", "DROP"])
    }

    /// Hand packets arriving from `from` (all when `None`) to user space on
    /// NFQUEUE `queue`; with no reader bound they pass untouched.
    pub fn queue(
        &self,
        from: Option<Ipv4Addr>,
        udp_port: Option<u16>,
        queue: u16,
    ) -> anyhow::Result<()> {
        let (src, port, q) = (
            from.map(|ip| ip.to_string()),
            udp_port.map(|p| p.to_string()),
            queue.to_string(),
        );
        let mut args = vec!["-A", CHAIN];
        if let Some(s) = &src {
            args.extend(["-s", s.as_str()]);
        }
        if let Some(p) = &port {
            args.extend(["-p", "udp", "--dport", p.as_str()]);
        }
        args.extend(["-j", "NFQUEUE", "--queue-num", &q, "--queue-bypass"]);
        self.iptables(&args)
    }
}
