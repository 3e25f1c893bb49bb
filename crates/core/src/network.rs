//! From the network objects to what the data plane enforces.
//!
//! Security groups, route tables, internet gateways and addresses are rows in
//! the store; packets are governed by [`PortPolicy`]s. After every change that
//! can alter what a VPC's instances may send or receive, the VPC's policies
//! are compiled again from the store and handed to the runtime whole. Whole,
//! because a diff would make every bug a lasting drift; compiling a VPC is a
//! few reads, and the data plane swaps its rules in one transaction.
//!
//! Pushes are serialised and each compiles from a fresh read, so the last push
//! always carries the last committed state, whatever order API calls finish in.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use crate::cidr::Ipv4Cidr;
use crate::error::Result;
use crate::ids::{SecurityGroupId, SubnetId, VpcId};
use crate::lifecycle::InstanceState;
use crate::resources::instances::Instance;
use crate::resources::internet_gateways::attached_to;
use crate::resources::route_tables::{RouteTable, RouteTarget};
use crate::resources::security_groups::{Peer, Rule, SecurityGroup};
use crate::resources::vpcs::Vpc;
use crate::runtime::{FlowRule, PortPolicy, Protocol};
use crate::service::Ec2;
use crate::store::{ReadTx, TxExt};

impl Ec2 {
    /// Compiles the VPCs' policies and hands them to the runtime. A failure
    /// is logged, not returned: the change that led here is committed, and
    /// the next push (or the next start) applies the full state again.
    pub(crate) fn sync_network<'a>(&self, vpcs: impl IntoIterator<Item = &'a VpcId>) {
        if !self.runtime.has_data_plane() {
            return;
        }
        let _serial = self.net_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = HashSet::new();
        for vpc in vpcs {
            if !seen.insert(vpc.clone()) {
                continue;
            }
            let result = self.store.read().and_then(|tx| vpc_policies(tx.as_ref(), vpc));
            match result {
                Ok(ports) => {
                    if let Err(e) = self.runtime.set_vpc_network(vpc, &ports) {
                        tracing::error!(vpc = %vpc, error = %e, "could not apply the VPC's network policy");
                    }
                }
                Err(e) => tracing::error!(vpc = %vpc, error = %e, "could not compile the VPC's network policy"),
            }
        }
    }

    /// Pushes every VPC that has instances; for start-up, when the data plane
    /// knows nothing yet.
    pub fn sync_all_networks(&self) -> Result<()> {
        let vpcs: Vec<VpcId> = {
            let tx = self.store.read()?;
            let mut v: Vec<VpcId> = tx.list_all_of::<Instance>()?.into_iter().filter(has_interface).map(|i| i.vpc_id).collect();
            v.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            v.dedup();
            v
        };
        self.sync_network(&vpcs);
        Ok(())
    }
}

/// Instances that hold their interface and address: all but those on their
/// way out. They are the ports, and the members that group references name.
fn has_interface(i: &Instance) -> bool {
    holds_interface(i.state)
}

pub(crate) fn holds_interface(state: InstanceState) -> bool {
    !matches!(state, InstanceState::ShuttingDown | InstanceState::Terminated)
}

/// The policy of every instance of one VPC, from the store.
pub(crate) fn vpc_policies(tx: &dyn ReadTx, vpc_id: &VpcId) -> Result<Vec<PortPolicy>> {
    let Some(vpc) = tx.load::<Vpc>(vpc_id.as_str())? else { return Ok(vec![]) };
    let instances: Vec<Instance> = tx
        .list_of::<Instance>(&vpc.owner, &vpc.region)?
        .into_iter()
        .filter(|i| &i.vpc_id == vpc_id && has_interface(i))
        .collect();
    let groups: HashMap<SecurityGroupId, SecurityGroup> = tx
        .list_of::<SecurityGroup>(&vpc.owner, &vpc.region)?
        .into_iter()
        .filter(|g| &g.vpc_id == vpc_id)
        .map(|g| (g.id.clone(), g))
        .collect();
    let mut members: HashMap<&SecurityGroupId, Vec<Ipv4Addr>> = HashMap::new();
    for i in &instances {
        for g in &i.security_groups {
            members.entry(&g.id).or_default().push(i.private_ip);
        }
    }
    let online = subnets_with_internet(tx, &vpc)?;
    let mut out = Vec::with_capacity(instances.len());
    for i in &instances {
        let mut ingress = Vec::new();
        let mut egress = Vec::new();
        for g in i.security_groups.iter().filter_map(|g| groups.get(&g.id)) {
            ingress.extend(g.ingress.iter().filter_map(|r| flow_rule(r, &members)));
            egress.extend(g.egress.iter().filter_map(|r| flow_rule(r, &members)));
        }
        out.push(PortPolicy {
            instance: i.id.clone(),
            mac: i.mac.clone(),
            private_ip: i.private_ip,
            public_ip: i.effective_public_ip().filter(|_| online.contains(&i.subnet_id)),
            ingress,
            egress,
        });
    }
    Ok(out)
}

/// Subnets whose route table (their own, else the VPC's main one) sends a
/// default route to an internet gateway attached to the VPC: only their
/// instances are reachable at, and leave with, a public address.
fn subnets_with_internet(tx: &dyn ReadTx, vpc: &Vpc) -> Result<HashSet<SubnetId>> {
    let attached: HashSet<_> = attached_to(tx, &vpc.owner, &vpc.region, &vpc.id)?.into_iter().collect();
    let tables: Vec<RouteTable> = tx.list_of::<RouteTable>(&vpc.owner, &vpc.region)?.into_iter().filter(|t| t.vpc_id == vpc.id).collect();
    let routes_out = |t: &RouteTable| {
        t.routes
            .iter()
            .any(|r| r.destination.prefix() == 0 && matches!(&r.target, RouteTarget::Gateway(g) if attached.contains(g)))
    };
    let main_online = tables.iter().find(|t| t.is_main()).is_some_and(routes_out);
    let subnets = tx.list_of::<crate::resources::subnets::Subnet>(&vpc.owner, &vpc.region)?;
    Ok(subnets
        .into_iter()
        .filter(|s| s.vpc_id == vpc.id)
        .filter(|s| match tables.iter().find(|t| t.associations.iter().any(|a| a.subnet_id.as_ref() == Some(&s.id))) {
            Some(t) => routes_out(t),
            None => main_online,
        })
        .map(|s| s.id)
        .collect())
}

/// One security-group rule as the data plane sees it, or `None` when it can
/// match no IPv4 packet (IPv6 ranges, prefix lists, a group with no members).
fn flow_rule(r: &Rule, members: &HashMap<&SecurityGroupId, Vec<Ipv4Addr>>) -> Option<FlowRule> {
    let port = |p: Option<i32>| p.and_then(|v| u16::try_from(v).ok());
    let icmp = |p: Option<i32>| p.and_then(|v| u8::try_from(v).ok());
    let protocol = match r.protocol.as_str() {
        "-1" => Protocol::All,
        "tcp" => Protocol::Tcp { from: port(r.from_port)?, to: port(r.to_port)? },
        "udp" => Protocol::Udp { from: port(r.from_port)?, to: port(r.to_port)? },
        "icmp" => Protocol::Icmp { icmp_type: icmp(r.from_port), code: icmp(r.to_port) },
        "icmpv6" | "58" => return None,
        n => Protocol::Number(n.parse().ok()?),
    };
    let peers: Vec<Ipv4Cidr> = match &r.peer {
        Peer::Cidr4(c) => vec![*c],
        Peer::Group { id, .. } => members.get(id)?.iter().filter_map(|ip| Ipv4Cidr::new(*ip, 32).ok()).collect(),
        Peer::Cidr6(_) | Peer::PrefixList(_) => return None,
    };
    (!peers.is_empty()).then_some(FlowRule { protocol, peers })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, SecurityGroupRuleId};
    use crate::tags::Tags;

    fn rule(protocol: &str, from: Option<i32>, to: Option<i32>, peer: Peer) -> Rule {
        Rule { id: SecurityGroupRuleId::generate(), protocol: protocol.into(), from_port: from, to_port: to, peer, description: None, tags: Tags::default() }
    }

    #[test]
    fn rules_compile_to_flows() {
        let g = SecurityGroupId::generate();
        let ip: Ipv4Addr = "10.0.0.5".parse().expect("ip");
        let mut members = HashMap::new();
        members.insert(&g, vec![ip]);
        let any: Ipv4Cidr = "0.0.0.0/0".parse().expect("cidr");
        assert_eq!(
            flow_rule(&rule("tcp", Some(22), Some(22), Peer::Cidr4(any)), &members),
            Some(FlowRule { protocol: Protocol::Tcp { from: 22, to: 22 }, peers: vec![any] })
        );
        assert_eq!(
            flow_rule(&rule("icmp", Some(8), Some(-1), Peer::Cidr4(any)), &members).map(|f| f.protocol),
            Some(Protocol::Icmp { icmp_type: Some(8), code: None })
        );
        assert_eq!(flow_rule(&rule("47", None, None, Peer::Cidr4(any)), &members).map(|f| f.protocol), Some(Protocol::Number(47)));
        let by_group = rule("-1", None, None, Peer::Group { id: g.clone(), owner: AccountId::parse("111111111111").expect("acct"), name: "x".into() });
        assert_eq!(flow_rule(&by_group, &members).map(|f| f.peers), Some(vec![Ipv4Cidr::new(ip, 32).expect("cidr")]));
        // A group nobody is in, and IPv6-only rules, match no IPv4 packet.
        let empty = rule("-1", None, None, Peer::Group { id: SecurityGroupId::generate(), owner: AccountId::parse("111111111111").expect("acct"), name: "y".into() });
        assert_eq!(flow_rule(&empty, &members), None);
        assert_eq!(flow_rule(&rule("-1", None, None, Peer::Cidr6("::/0".into())), &members), None);
    }
}
