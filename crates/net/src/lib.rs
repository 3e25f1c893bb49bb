//! Strato's data plane.
//!
//! Every VPC gets a network namespace of its own (`strato-<vpc id>`), so VPCs
//! can never reach each other, even with overlapping CIDRs. Inside it, each
//! instance's tap device is a routed port: the subnet's gateway address sits on
//! the tap, a /32 route points at the instance, and proxy ARP lets instances of
//! a subnet reach each other through the namespace. Every packet therefore
//! crosses an interface named after its instance, which is what nftables rules
//! (metadata identity now; security groups and anti-spoofing with the
//! networking work) key on.
//!
//! A namespace called `strato-outside` stands for the internet. Each VPC
//! namespace is linked to it by a veth pair (the internet gateway); public
//! addresses are routed over it and NATed 1:1 to private addresses. Nothing is
//! linked to the host's own namespace, so no traffic of an instance can leave
//! the machine.
//!
//! The instance metadata service listens inside each VPC namespace, one port
//! per instance; nftables sends what an instance's tap sends to
//! 169.254.169.254:80 to that instance's port and drops anything else aimed at
//! those ports, so an instance's identity comes from the interface its request
//! arrived on and never from what it claims.
//!
//! Commands are run as argument vectors (never through a shell) and every value
//! in them is an id or address Strato made itself.

pub mod sys;

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

pub const OUTSIDE_NS: &str = "strato-outside";
pub const METADATA_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// Transit addresses of every gateway link: the outside end and the VPC end.
pub const TRANSIT_OUTSIDE: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
pub const TRANSIT_VPC: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 2);
const GATEWAY_LINK: &str = "igw0";
/// Ports the metadata service listens on inside VPC namespaces.
pub const METADATA_PORTS: (u16, u16) = (20000, 59999);

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{cmd}: {message}")]
    Command { cmd: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, NetError>;

/// One instance's attachment to its VPC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    pub instance: String,
    pub vpc: String,
    pub private_ip: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub public_ip: Option<Ipv4Addr>,
    pub metadata_port: u16,
}

impl PortSpec {
    pub fn tap(&self) -> String {
        tap_name(&self.instance)
    }

    pub fn namespace(&self) -> String {
        vpc_namespace(&self.vpc)
    }
}

pub fn vpc_namespace(vpc: &str) -> String {
    format!("strato-{vpc}")
}

fn hex_body(id: &str) -> &str {
    id.split_once('-').map(|(_, b)| b).unwrap_or(id)
}

/// `i-0123456789abcdef0` → `t0123456789abcd` (interface names are at most 15 bytes).
pub fn tap_name(instance: &str) -> String {
    let body = hex_body(instance);
    format!("t{}", &body[..body.len().min(14)])
}

fn veth_outside_name(vpc: &str) -> String {
    let body = hex_body(vpc);
    format!("v{}", &body[..body.len().min(14)])
}

fn ns_path(ns: &str) -> String {
    format!("/run/netns/{ns}")
}

fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program).args(args).output().map_err(|e| NetError::Command {
        cmd: format!("{program} {}", args.join(" ")),
        message: format!("cannot run {program}: {e} (is it installed?)"),
    })?;
    if !out.status.success() {
        return Err(NetError::Command {
            cmd: format!("{program} {}", args.join(" ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip(args: &[&str]) -> Result<String> {
    run("ip", args)
}

/// `nft -f -` in a namespace with the given ruleset text.
fn nft_apply(ns: &str, ruleset: &str) -> Result<()> {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| NetError::Command { cmd: "nft -f -".into(), message: format!("cannot run nft: {e} (is nftables installed?)") })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(ruleset.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(NetError::Command {
            cmd: format!("nft -f - (in {ns})"),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

fn sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    run("ip", &["netns", "exec", ns, "sysctl", "-q", "-w", &format!("{key}={value}")]).map(|_| ())
}

pub fn namespace_exists(ns: &str) -> bool {
    Path::new(&ns_path(ns)).exists()
}

/// The data plane of this host. Keeps the ports it manages so it can rebuild
/// a namespace's rules in one atomic step whenever one of them changes.
pub struct DataPlane {
    ports: Mutex<BTreeMap<String, PortSpec>>,
}

impl Default for DataPlane {
    fn default() -> Self {
        Self::new()
    }
}

impl DataPlane {
    pub fn new() -> DataPlane {
        DataPlane { ports: Mutex::new(BTreeMap::new()) }
    }

    fn ports(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PortSpec>> {
        self.ports.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn ensure_outside(&self) -> Result<()> {
        if namespace_exists(OUTSIDE_NS) {
            return Ok(());
        }
        ip(&["netns", "add", OUTSIDE_NS])?;
        ip(&["-n", OUTSIDE_NS, "link", "set", "lo", "up"])?;
        sysctl(OUTSIDE_NS, "net.ipv4.ip_forward", "1")?;
        Ok(())
    }

    /// Makes the namespace of a VPC and its link to the outside, if missing.
    pub fn ensure_vpc(&self, vpc: &str) -> Result<()> {
        self.ensure_outside()?;
        let ns = vpc_namespace(vpc);
        if !namespace_exists(&ns) {
            ip(&["netns", "add", &ns])?;
        }
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        let _ = ip(&["-n", &ns, "addr", "add", &format!("{METADATA_ADDR}/32"), "dev", "lo"]);
        sysctl(&ns, "net.ipv4.ip_forward", "1")?;
        sysctl(&ns, "net.ipv4.conf.all.rp_filter", "0")?;
        sysctl(&ns, "net.ipv4.conf.default.rp_filter", "0")?;
        let outside = veth_outside_name(vpc);
        let linked = ip(&["-n", &ns, "link", "show", GATEWAY_LINK]).is_ok();
        if !linked {
            // Made in the VPC namespace, the far end moved to the outside one.
            ip(&["-n", &ns, "link", "add", GATEWAY_LINK, "type", "veth", "peer", "name", &outside, "netns", OUTSIDE_NS])?;
            ip(&["-n", &ns, "addr", "add", &format!("{TRANSIT_VPC}/32"), "dev", GATEWAY_LINK])?;
            ip(&["-n", &ns, "link", "set", GATEWAY_LINK, "up"])?;
            ip(&["-n", &ns, "route", "add", &format!("{TRANSIT_OUTSIDE}/32"), "dev", GATEWAY_LINK])?;
            ip(&["-n", &ns, "route", "add", "default", "via", &TRANSIT_OUTSIDE.to_string(), "dev", GATEWAY_LINK, "onlink"])?;
            ip(&["-n", OUTSIDE_NS, "addr", "add", &format!("{TRANSIT_OUTSIDE}/32"), "dev", &outside])?;
            ip(&["-n", OUTSIDE_NS, "link", "set", &outside, "up"])?;
        }
        self.apply_rules(vpc)
    }

    /// Creates the instance's tap and routes, and its rules.
    pub fn attach(&self, port: &PortSpec) -> Result<()> {
        self.ensure_vpc(&port.vpc)?;
        let ns = port.namespace();
        let tap = port.tap();
        if ip(&["-n", &ns, "link", "show", &tap]).is_err() {
            ip(&["-n", &ns, "tuntap", "add", "dev", &tap, "mode", "tap"])?;
        }
        sysctl(&ns, &format!("net.ipv4.conf.{tap}.proxy_arp"), "1")?;
        ip(&["-n", &ns, "link", "set", &tap, "up"])?;
        let gw = format!("{}/32", port.gateway);
        let have = ip(&["-n", &ns, "-4", "addr", "show", "dev", &tap]).unwrap_or_default();
        if !have.contains(&format!("inet {gw}")) {
            ip(&["-n", &ns, "addr", "add", &gw, "dev", &tap])?;
        }
        ip(&["-n", &ns, "route", "replace", &format!("{}/32", port.private_ip), "dev", &tap])?;
        self.ports().insert(port.instance.clone(), port.clone());
        self.apply_rules(&port.vpc)?;
        self.route_public(port, true)
    }

    fn route_public(&self, port: &PortSpec, present: bool) -> Result<()> {
        let Some(public) = port.public_ip else { return Ok(()) };
        let dst = format!("{public}/32");
        if present {
            let dev = veth_outside_name(&port.vpc);
            ip(&["-n", OUTSIDE_NS, "route", "replace", &dst, "via", &TRANSIT_VPC.to_string(), "dev", &dev, "onlink"])?;
        } else {
            let _ = ip(&["-n", OUTSIDE_NS, "route", "del", &dst]);
        }
        Ok(())
    }

    /// Opens the instance's tap for QEMU.
    pub fn open_tap(&self, port: &PortSpec) -> Result<OwnedFd> {
        let tap = port.tap();
        Ok(sys::in_namespace(&ns_path(&port.namespace()), move || sys::open_tap(&tap))?)
    }

    /// A listening socket for the instance's metadata inside its VPC namespace.
    pub fn metadata_listener(&self, port: &PortSpec) -> Result<TcpListener> {
        let addr = SocketAddr::from((METADATA_ADDR, port.metadata_port));
        let listener = sys::in_namespace(&ns_path(&port.namespace()), move || TcpListener::bind(addr))?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    }

    /// Removes the instance's tap, routes and rules. Safe to repeat.
    pub fn detach(&self, instance: &str, vpc: &str) -> Result<()> {
        let ns = vpc_namespace(vpc);
        let removed = self.ports().remove(instance);
        if namespace_exists(&ns) {
            let _ = ip(&["-n", &ns, "link", "del", &tap_name(instance)]);
            self.apply_rules(vpc)?;
        }
        if let Some(p) = removed {
            self.route_public(&p, false)?;
        }
        Ok(())
    }

    /// The rules of a VPC namespace, rebuilt from its ports and swapped in as
    /// one transaction.
    fn apply_rules(&self, vpc: &str) -> Result<()> {
        let ns = vpc_namespace(vpc);
        let ports: Vec<PortSpec> = self.ports().values().filter(|p| p.vpc == vpc).cloned().collect();
        nft_apply(&ns, &ruleset(&ports))
    }

    /// Deletes taps and namespaces that no known instance or VPC uses.
    pub fn sweep(&self, live_instances: &HashSet<String>, live_vpcs: &HashSet<String>) -> Result<()> {
        let live_taps: HashSet<String> = live_instances.iter().map(|i| tap_name(i)).collect();
        for ns in namespaces()? {
            let Some(vpc) = ns.strip_prefix("strato-").filter(|v| v.starts_with("vpc-")) else { continue };
            if !live_vpcs.contains(vpc) {
                tracing::info!(namespace = %ns, "removing the namespace of a VPC that no longer runs instances");
                self.remove_vpc(vpc)?;
                continue;
            }
            let links = ip(&["-n", &ns, "-o", "link", "show"]).unwrap_or_default();
            for line in links.lines() {
                let name = line.split(':').nth(1).map(|s| s.trim().split('@').next().unwrap_or("").to_string()).unwrap_or_default();
                if name.starts_with('t') && name.len() == 15 && !live_taps.contains(&name) {
                    tracing::info!(namespace = %ns, tap = %name, "removing an orphaned tap");
                    let _ = ip(&["-n", &ns, "link", "del", &name]);
                }
            }
        }
        Ok(())
    }

    /// Removes a VPC's namespace and its link to the outside.
    pub fn remove_vpc(&self, vpc: &str) -> Result<()> {
        let ns = vpc_namespace(vpc);
        self.ports().retain(|_, p| p.vpc != vpc);
        if namespace_exists(&ns) {
            // Deleting the namespace deletes its veth end and so the pair.
            ip(&["netns", "del", &ns])?;
        }
        Ok(())
    }

    /// Taps currently present in a VPC namespace.
    pub fn taps(&self, vpc: &str) -> Vec<String> {
        let ns = vpc_namespace(vpc);
        ip(&["-n", &ns, "-o", "link", "show"])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(':').nth(1).map(|s| s.trim().split('@').next().unwrap_or("").to_string()))
            .filter(|n| n.starts_with('t') && n.len() == 15)
            .collect()
    }
}

/// Namespaces Strato made (`strato-…`).
pub fn namespaces() -> Result<Vec<String>> {
    let out = ip(&["netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("strato-"))
        .map(str::to_string)
        .collect())
}

/// The nftables ruleset of one VPC namespace.
pub fn ruleset(ports: &[PortSpec]) -> String {
    let (lo, hi) = METADATA_PORTS;
    let mut pre = String::new();
    let mut input = String::new();
    let mut post = String::new();
    for p in ports {
        let tap = p.tap();
        pre.push_str(&format!(
            "    iifname \"{tap}\" ip daddr {METADATA_ADDR} tcp dport 80 dnat to {METADATA_ADDR}:{}\n",
            p.metadata_port
        ));
        input.push_str(&format!("    iifname \"{tap}\" tcp dport {} ct status dnat accept\n", p.metadata_port));
        if let Some(public) = p.public_ip {
            pre.push_str(&format!("    iifname \"{GATEWAY_LINK}\" ip daddr {public} dnat to {}\n", p.private_ip));
            post.push_str(&format!("    oifname \"{GATEWAY_LINK}\" ip saddr {} snat to {public}\n", p.private_ip));
        }
    }
    format!(
        "table ip strato {{}}\ndelete table ip strato\ntable ip strato {{\n  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{pre}  }}\n  chain input {{\n    type filter hook input priority filter; policy accept;\n{input}    ip daddr {METADATA_ADDR} tcp dport {lo}-{hi} drop\n  }}\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{post}  }}\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_in_fifteen_bytes() {
        assert_eq!(tap_name("i-0123456789abcdef0"), "t0123456789abcd");
        assert_eq!(tap_name("i-0123abcd"), "t0123abcd");
        assert_eq!(veth_outside_name("vpc-0123456789abcdef0"), "v0123456789abcd");
        assert!(tap_name("i-0123456789abcdef0").len() <= 15);
    }

    #[test]
    fn ruleset_keys_metadata_on_the_tap() {
        let p = PortSpec {
            instance: "i-0123456789abcdef0".into(),
            vpc: "vpc-0123456789abcdef0".into(),
            private_ip: "172.31.0.4".parse().expect("ip"),
            gateway: "172.31.0.1".parse().expect("ip"),
            public_ip: Some("198.18.0.7".parse().expect("ip")),
            metadata_port: 20001,
        };
        let r = ruleset(&[p]);
        assert!(r.contains("iifname \"t0123456789abcd\" ip daddr 169.254.169.254 tcp dport 80 dnat to 169.254.169.254:20001"));
        assert!(r.contains("iifname \"t0123456789abcd\" tcp dport 20001 ct status dnat accept"));
        assert!(r.contains("ip daddr 169.254.169.254 tcp dport 20000-59999 drop"));
        assert!(r.contains("ip daddr 198.18.0.7 dnat to 172.31.0.4"));
        assert!(r.contains("ip saddr 172.31.0.4 snat to 198.18.0.7"));
    }
}
