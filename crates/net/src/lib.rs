//! Strato's data plane.
//!
//! Every VPC gets a network namespace of its own (`strato-<vpc id>`), so VPCs
//! can never reach each other, even with overlapping CIDRs. Inside it, each
//! instance's tap device is a routed port: the subnet's gateway address sits on
//! the tap, a /32 route points at the instance, and proxy ARP lets instances of
//! a subnet reach each other through the namespace. Every packet therefore
//! crosses an interface named after its instance, which is what the nftables
//! rules key on: metadata identity, anti-spoofing and security groups.
//!
//! Security groups are enforced in the namespace's forward hook, statefully:
//! replies of a tracked flow pass; a new flow passes when the sender's egress
//! chain and the receiver's ingress chain both allow it. An instance's frames
//! must carry its own MAC and its own address, or they are dropped before
//! connection tracking sees them. A port whose policy has not arrived yet
//! (see [`DataPlane::set_vpc_network`]) is closed: it fails safe.
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

use strato_core::runtime::{FlowRule, PortPolicy, Protocol};

pub const OUTSIDE_NS: &str = "strato-outside";
pub const METADATA_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// Transit addresses of every gateway link: the outside end and the VPC end.
pub const TRANSIT_OUTSIDE: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
pub const TRANSIT_VPC: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 2);
const GATEWAY_LINK: &str = "igw0";
/// The optional link between the host and the outside namespace: its host
/// end, its outside end, and their addresses.
pub const HOST_LINK: &str = "strato-host";
const HOST_LINK_OUTSIDE: &str = "host0";
pub const HOST_LINK_HOST_ADDR: Ipv4Addr = Ipv4Addr::new(100, 64, 255, 1);
const HOST_LINK_OUTSIDE_ADDR: Ipv4Addr = Ipv4Addr::new(100, 64, 255, 2);
/// The host's nftables table for internet egress (NAT through its address).
const EGRESS_TABLE: &str = "strato-egress";
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

/// One instance's attachment to its VPC. What may cross it, and its public
/// address, come from the VPC's policies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    pub instance: String,
    pub vpc: String,
    pub private_ip: Ipv4Addr,
    pub gateway: Ipv4Addr,
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
    nft_stdin("ip", &["netns", "exec", ns, "nft", "-f", "-"], ns, ruleset)
}

/// `nft -f -` in the host's own namespace.
fn nft_apply_host(ruleset: &str) -> Result<()> {
    nft_stdin("nft", &["-f", "-"], "the host", ruleset)
}

fn nft_stdin(program: &str, args: &[&str], ns: &str, ruleset: &str) -> Result<()> {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
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

/// How the outside namespace meets the host, both off by default: nothing an
/// instance sends can leave the machine unless the operator says so.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutsideOptions {
    /// The public pool (`a.b.c.d/n`), routed from the host into the outside
    /// namespace, so that the host itself reaches public addresses.
    pub host_route: Option<String>,
    /// Traffic from the outside namespace to anything that is not a public
    /// address of Strato's goes to the host, NATed to the host's address.
    pub internet_egress: bool,
    /// The public pool, which the outside namespace never sends on: an
    /// address of it that no instance holds is unreachable, not forwarded.
    pub public_pool: Option<String>,
}

/// The data plane of this host. Keeps the ports it manages and the policies
/// the control plane gave it, so it can rebuild a namespace's rules in one
/// atomic step whenever either changes.
pub struct DataPlane {
    state: Mutex<State>,
    outside: OutsideOptions,
    /// Whether this process has set up the outside namespace's link to the
    /// host as `outside` says (once; a namespace left by an earlier run with
    /// other options is brought in line).
    outside_done: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct State {
    ports: BTreeMap<String, PortSpec>,
    /// By VPC, then by instance.
    policies: BTreeMap<String, BTreeMap<String, PortPolicy>>,
    /// Public addresses routed from the outside namespace, and to which VPC.
    routed: BTreeMap<Ipv4Addr, String>,
}

impl Default for DataPlane {
    fn default() -> Self {
        Self::new(OutsideOptions::default())
    }
}

impl DataPlane {
    pub fn new(outside: OutsideOptions) -> DataPlane {
        DataPlane { state: Mutex::new(State::default()), outside, outside_done: std::sync::atomic::AtomicBool::new(false) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn ensure_outside(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        if !namespace_exists(OUTSIDE_NS) {
            ip(&["netns", "add", OUTSIDE_NS])?;
            ip(&["-n", OUTSIDE_NS, "link", "set", "lo", "up"])?;
            sysctl(OUTSIDE_NS, "net.ipv4.ip_forward", "1")?;
        } else if self.outside_done.load(Ordering::Acquire) {
            return Ok(());
        }
        self.link_host()?;
        self.outside_done.store(true, Ordering::Release);
        Ok(())
    }

    /// Makes (or removes) the link between the host and the outside
    /// namespace, its routes and the egress NAT, as the options say.
    fn link_host(&self) -> Result<()> {
        let o = &self.outside;
        if let Some(pool) = &o.public_pool {
            // Public addresses nobody holds are dead ends, never forwarded
            // on (towards the host, with egress on).
            ip(&["-n", OUTSIDE_NS, "route", "replace", "unreachable", pool])?;
        }
        let wanted = o.host_route.is_some() || o.internet_egress;
        let present = ip(&["link", "show", HOST_LINK]).is_ok();
        if !wanted {
            if present {
                ip(&["link", "del", HOST_LINK])?;
            }
            let _ = run("nft", &["delete", "table", "ip", EGRESS_TABLE]);
            return Ok(());
        }
        if !present {
            ip(&["link", "add", HOST_LINK, "type", "veth", "peer", "name", HOST_LINK_OUTSIDE, "netns", OUTSIDE_NS])?;
            ip(&["addr", "add", &format!("{HOST_LINK_HOST_ADDR}/32"), "dev", HOST_LINK])?;
            ip(&["link", "set", HOST_LINK, "up"])?;
            ip(&["-n", OUTSIDE_NS, "addr", "add", &format!("{HOST_LINK_OUTSIDE_ADDR}/32"), "dev", HOST_LINK_OUTSIDE])?;
            ip(&["-n", OUTSIDE_NS, "link", "set", HOST_LINK_OUTSIDE, "up"])?;
        }
        ip(&["route", "replace", &format!("{HOST_LINK_OUTSIDE_ADDR}/32"), "dev", HOST_LINK])?;
        ip(&["-n", OUTSIDE_NS, "route", "replace", &format!("{HOST_LINK_HOST_ADDR}/32"), "dev", HOST_LINK_OUTSIDE])?;
        if let Some(pool) = &o.host_route {
            ip(&["route", "replace", pool, "via", &HOST_LINK_OUTSIDE_ADDR.to_string(), "dev", HOST_LINK, "onlink"])?;
        }
        if o.internet_egress {
            ip(&["-n", OUTSIDE_NS, "route", "replace", "default", "via", &HOST_LINK_HOST_ADDR.to_string(), "dev", HOST_LINK_OUTSIDE, "onlink"])?;
            // The operator asked for it: the host forwards, and what comes
            // from the outside namespace leaves with the host's address.
            run("sysctl", &["-q", "-w", "net.ipv4.ip_forward=1"])?;
            let table = format!(
                "table ip {EGRESS_TABLE} {{}}\ndelete table ip {EGRESS_TABLE}\ntable ip {EGRESS_TABLE} {{\n\
  chain forward {{\n    type filter hook forward priority filter; policy accept;\n\
    iifname \"{HOST_LINK}\" accept\n    oifname \"{HOST_LINK}\" ct state established,related accept\n    oifname \"{HOST_LINK}\" drop\n  }}\n\
  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n\
    iifname \"{HOST_LINK}\" oifname != \"{HOST_LINK}\" masquerade\n  }}\n}}\n"
            );
            nft_apply_host(&table)?;
        } else {
            let _ = ip(&["-n", OUTSIDE_NS, "route", "del", "default"]);
            let _ = run("nft", &["delete", "table", "ip", EGRESS_TABLE]);
        }
        Ok(())
    }

    /// Makes the namespace of a VPC and its link to the outside, if missing.
    fn ensure_vpc(&self, vpc: &str) -> Result<()> {
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
        Ok(())
    }

    /// Creates the instance's tap and routes, and its rules.
    pub fn attach(&self, port: &PortSpec) -> Result<()> {
        let mut st = self.state();
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
        st.ports.insert(port.instance.clone(), port.clone());
        refresh(&mut st, &port.vpc)
    }

    /// Replaces the policies of a VPC's instances and applies them to the
    /// ports it has here. Policies of instances without a port wait for one.
    pub fn set_vpc_network(&self, vpc: &str, policies: &[PortPolicy]) -> Result<()> {
        let mut st = self.state();
        st.policies.insert(vpc.to_string(), policies.iter().map(|p| (p.instance.to_string(), p.clone())).collect());
        if st.ports.values().any(|p| p.vpc == vpc) {
            refresh(&mut st, vpc)?;
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

    /// Removes the instance's tap, routes and rules, and the VPC's namespace
    /// with its last port: a VPC without running instances has no data plane.
    /// Safe to repeat.
    pub fn detach(&self, instance: &str, vpc: &str) -> Result<()> {
        let mut st = self.state();
        let ns = vpc_namespace(vpc);
        st.ports.remove(instance);
        if !st.ports.values().any(|p| p.vpc == vpc) {
            return drop_vpc(&mut st, vpc);
        }
        if namespace_exists(&ns) {
            let _ = ip(&["-n", &ns, "link", "del", &tap_name(instance)]);
        }
        refresh(&mut st, vpc)
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
        let mut st = self.state();
        st.ports.retain(|_, p| p.vpc != vpc);
        drop_vpc(&mut st, vpc)
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

/// Takes a VPC off the data plane: its public routes, and its namespace,
/// whose deletion takes its taps, rules and veth pair with it.
fn drop_vpc(st: &mut State, vpc: &str) -> Result<()> {
    route_publics(st, vpc, &HashSet::new());
    let ns = vpc_namespace(vpc);
    if namespace_exists(&ns) {
        ip(&["netns", "del", &ns])?;
    }
    Ok(())
}

/// Rebuilds a VPC namespace's rules from its ports and their policies and
/// swaps them in as one transaction, then routes its public addresses.
fn refresh(st: &mut State, vpc: &str) -> Result<()> {
    let ns = vpc_namespace(vpc);
    let empty = BTreeMap::new();
    let policies = st.policies.get(vpc).unwrap_or(&empty);
    let ports: Vec<(PortSpec, Option<PortPolicy>)> =
        st.ports.values().filter(|p| p.vpc == vpc).map(|p| (p.clone(), policies.get(&p.instance).cloned())).collect();
    let publics: HashSet<Ipv4Addr> = ports.iter().filter_map(|(_, pol)| pol.as_ref().and_then(|p| p.public_ip)).collect();
    if namespace_exists(&ns) {
        nft_apply(&ns, &ruleset(&ports))?;
    }
    route_publics(st, vpc, &publics);
    Ok(())
}

/// Points the outside namespace's routes for `publics` at the VPC, and takes
/// away the VPC's routes for addresses it no longer has (unless another VPC
/// has taken them over meanwhile).
fn route_publics(st: &mut State, vpc: &str, publics: &HashSet<Ipv4Addr>) {
    let stale: Vec<Ipv4Addr> = st.routed.iter().filter(|(a, v)| v.as_str() == vpc && !publics.contains(a)).map(|(a, _)| *a).collect();
    for a in stale {
        let _ = ip(&["-n", OUTSIDE_NS, "route", "del", &format!("{a}/32")]);
        st.routed.remove(&a);
    }
    let dev = veth_outside_name(vpc);
    for a in publics {
        if st.routed.get(a).map(String::as_str) == Some(vpc) {
            continue;
        }
        match ip(&["-n", OUTSIDE_NS, "route", "replace", &format!("{a}/32"), "via", &TRANSIT_VPC.to_string(), "dev", &dev, "onlink"]) {
            Ok(_) => {
                st.routed.insert(*a, vpc.to_string());
            }
            Err(e) => tracing::warn!(address = %a, error = %e, "could not route a public address"),
        }
    }
}

/// What a rule matches, as nftables words (empty when it matches everything).
fn flow_match(rule: &FlowRule, peer_field: &str) -> String {
    let mut m = Vec::new();
    if !rule.peers.iter().any(|c| c.prefix() == 0) {
        let peers: Vec<String> = rule.peers.iter().map(|c| c.to_string()).collect();
        m.push(format!("{peer_field} {{ {} }}", peers.join(", ")));
    }
    let ports = |f: u16, t: u16| if f == t { f.to_string() } else { format!("{f}-{t}") };
    match &rule.protocol {
        Protocol::All => {}
        Protocol::Tcp { from, to } => m.push(format!("tcp dport {}", ports(*from, *to))),
        Protocol::Udp { from, to } => m.push(format!("udp dport {}", ports(*from, *to))),
        Protocol::Icmp { icmp_type, code } => {
            m.push("ip protocol icmp".into());
            if let Some(t) = icmp_type {
                m.push(format!("icmp type {t}"));
            }
            if let Some(c) = code {
                m.push(format!("icmp code {c}"));
            }
        }
        Protocol::Number(n) => m.push(format!("ip protocol {n}")),
    }
    m.join(" ")
}

/// One verdict line of a rule chain: `<match> <verdict>`, or the bare verdict.
fn verdict_line(matches: String, verdict: &str) -> String {
    if matches.is_empty() {
        format!("    {verdict}\n")
    } else {
        format!("    {matches} {verdict}\n")
    }
}

/// The nftables ruleset of one VPC namespace.
pub fn ruleset(ports: &[(PortSpec, Option<PortPolicy>)]) -> String {
    let (lo, hi) = METADATA_PORTS;
    let mut guard = String::new();
    let mut pre = String::new();
    let mut input = String::new();
    let mut post = String::new();
    let mut out_map = Vec::new();
    let mut in_map = Vec::new();
    let mut chains = String::new();
    let mut publics = Vec::new();
    for (p, policy) in ports {
        let tap = p.tap();
        pre.push_str(&format!(
            "    iifname \"{tap}\" ip daddr {METADATA_ADDR} tcp dport 80 dnat to {METADATA_ADDR}:{}\n",
            p.metadata_port
        ));
        input.push_str(&format!("    iifname \"{tap}\" tcp dport {} ct status dnat accept\n", p.metadata_port));
        // Nothing else of the namespace itself is an instance's business.
        input.push_str(&format!("    iifname \"{tap}\" drop\n"));
        let Some(pol) = policy else {
            guard.push_str(&format!("    iifname \"{tap}\" drop\n"));
            continue;
        };
        guard.push_str(&format!("    iifname \"{tap}\" ether saddr != {} drop\n", pol.mac));
        guard.push_str(&format!("    iifname \"{tap}\" ip saddr != {} drop\n", p.private_ip));
        if let Some(public) = pol.public_ip {
            publics.push(public.to_string());
            pre.push_str(&format!("    iifname \"{GATEWAY_LINK}\" ip daddr {public} dnat to {}\n", p.private_ip));
            post.push_str(&format!("    oifname \"{GATEWAY_LINK}\" ip saddr {} snat to {public}\n", p.private_ip));
        }
        out_map.push(format!("\"{tap}\" : jump egress_{tap}"));
        in_map.push(format!("\"{tap}\" : jump ingress_{tap}"));
        // A sender's allowed flow returns to the forward chain, where the
        // receiver's ingress chain (if the receiver is an instance) decides.
        chains.push_str(&format!("  chain egress_{tap} {{\n"));
        for r in &pol.egress {
            chains.push_str(&verdict_line(flow_match(r, "ip daddr"), "return"));
        }
        chains.push_str("    drop\n  }\n");
        chains.push_str(&format!("  chain ingress_{tap} {{\n"));
        for r in &pol.ingress {
            chains.push_str(&verdict_line(flow_match(r, "ip saddr"), "accept"));
        }
        chains.push_str("    drop\n  }\n");
    }
    let set_elements = if publics.is_empty() { String::new() } else { format!(" elements = {{ {} }};", publics.join(", ")) };
    let vmap = |field: &str, items: &[String]| {
        if items.is_empty() {
            String::new()
        } else {
            format!("    {field} vmap {{ {} }}\n", items.join(", "))
        }
    };
    let (out_vmap, in_vmap) = (vmap("iifname", &out_map), vmap("oifname", &in_map));
    // `guard` runs before connection tracking: spoofed frames never create
    // state, and traffic for a public address the VPC no longer has is cut
    // at once, tracked or not. `leak` runs after source NAT: only packets
    // carrying one of the VPC's public addresses go out.
    format!(
        "table ip strato {{}}
delete table ip strato
table ip strato {{
  set publics {{ type ipv4_addr;{set_elements} }}
  chain guard {{
    type filter hook prerouting priority raw; policy accept;
    iifname \"{GATEWAY_LINK}\" ip daddr != @publics drop
{guard}  }}
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
{pre}  }}
  chain input {{
    type filter hook input priority filter; policy accept;
{input}    ip daddr {METADATA_ADDR} tcp dport {lo}-{hi} drop
  }}
  chain forward {{
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    ct state invalid drop
{out_vmap}{in_vmap}    oifname \"{GATEWAY_LINK}\" accept
  }}
{chains}  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
{post}  }}
  chain leak {{
    type filter hook postrouting priority 300; policy accept;
    oifname \"{GATEWAY_LINK}\" ip saddr != @publics drop
  }}
}}
"
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

    pub(super) fn port() -> PortSpec {
        PortSpec {
            instance: "i-0123456789abcdef0".into(),
            vpc: "vpc-0123456789abcdef0".into(),
            private_ip: "172.31.0.4".parse().expect("ip"),
            gateway: "172.31.0.1".parse().expect("ip"),
            metadata_port: 20001,
        }
    }

    pub(super) fn policy() -> PortPolicy {
        let cidr = |s: &str| s.parse().expect("cidr");
        PortPolicy {
            instance: strato_core::ids::InstanceId::parse("i-0123456789abcdef0").expect("id"),
            mac: "02:00:00:00:00:01".into(),
            private_ip: "172.31.0.4".parse().expect("ip"),
            public_ip: Some("198.18.0.7".parse().expect("ip")),
            ingress: vec![
                FlowRule { protocol: Protocol::Tcp { from: 22, to: 22 }, peers: vec![cidr("0.0.0.0/0")] },
                FlowRule { protocol: Protocol::Udp { from: 1000, to: 2000 }, peers: vec![cidr("10.0.0.0/8"), cidr("172.31.0.9/32")] },
                FlowRule { protocol: Protocol::Icmp { icmp_type: Some(8), code: None }, peers: vec![cidr("0.0.0.0/0")] },
            ],
            egress: vec![FlowRule { protocol: Protocol::All, peers: vec![cidr("0.0.0.0/0")] }],
        }
    }

    #[test]
    fn ruleset_keys_metadata_on_the_tap() {
        let r = ruleset(&[(port(), Some(policy()))]);
        assert!(r.contains("iifname \"t0123456789abcd\" ip daddr 169.254.169.254 tcp dport 80 dnat to 169.254.169.254:20001"));
        assert!(r.contains("iifname \"t0123456789abcd\" tcp dport 20001 ct status dnat accept"));
        assert!(r.contains("ip daddr 169.254.169.254 tcp dport 20000-59999 drop"));
        assert!(r.contains("ip daddr 198.18.0.7 dnat to 172.31.0.4"));
        assert!(r.contains("ip saddr 172.31.0.4 snat to 198.18.0.7"));
        assert!(r.contains("set publics { type ipv4_addr; elements = { 198.18.0.7 }; }"));
    }

    #[test]
    fn ruleset_enforces_groups_and_sources() {
        let r = ruleset(&[(port(), Some(policy()))]);
        assert!(r.contains("iifname \"t0123456789abcd\" ether saddr != 02:00:00:00:00:01 drop"));
        assert!(r.contains("iifname \"t0123456789abcd\" ip saddr != 172.31.0.4 drop"));
        assert!(r.contains("iifname vmap { \"t0123456789abcd\" : jump egress_t0123456789abcd }"));
        assert!(r.contains("    tcp dport 22 accept\n"));
        assert!(r.contains("    ip saddr { 10.0.0.0/8, 172.31.0.9/32 } udp dport 1000-2000 accept\n"));
        assert!(r.contains("    ip protocol icmp icmp type 8 accept\n"));
        // Egress to anywhere, all protocols: one bare verdict.
        assert!(r.contains("  chain egress_t0123456789abcd {\n    return\n    drop\n  }"));
    }

    #[test]
    fn a_port_without_policy_is_closed() {
        let r = ruleset(&[(port(), None)]);
        assert!(r.contains("    iifname \"igw0\" ip daddr != @publics drop\n    iifname \"t0123456789abcd\" drop\n"));
        assert!(!r.contains("dnat to 172.31.0.4"));
        assert!(!r.contains("vmap"));
    }
}

