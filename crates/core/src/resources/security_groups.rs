//! Security groups and their rules.
//!
//! A group holds its ingress and egress rules; each rule is one (protocol, port
//! range, peer) with its own `sgr-` id, which is how `DescribeSecurityGroupRules`
//! and `ModifySecurityGroupRules` see them. The `IpPermissions` of the older
//! actions are expanded into rules on the way in (one rule per CIDR or referenced
//! group) and folded back by (protocol, ports) on the way out.

use std::borrow::Cow;
use std::net::Ipv6Addr;

use serde::{Deserialize, Serialize};

use crate::cidr::Ipv4Cidr;
use crate::error::{Duplicate, Error, Limit, Result};
use crate::filter::{self, Filter, Filterable, Page};
use crate::ids::{AccountId, Region, ResourceKind, SecurityGroupId, SecurityGroupRuleId, VpcId};
use crate::resources::instances::Instance;
use crate::resources::vpcs::Vpc;
use crate::service::{Ctx, Ec2};
use crate::store::{ReadTx, Resource, TxExt, WriteTxExt};
use crate::tags::{self, TagSpecification, Tags};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Peer {
    Cidr4(Ipv4Cidr),
    Cidr6(String),
    Group { id: SecurityGroupId, owner: AccountId, name: String },
    PrefixList(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: SecurityGroupRuleId,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, `-1` (all), or another protocol number.
    pub protocol: String,
    /// `None` for protocols without ports (`-1` and bare protocol numbers).
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub peer: Peer,
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Tags,
}

impl Rule {
    /// Two rules are the same rule when these agree; the description doesn't count.
    fn key(&self) -> (&str, Option<i32>, Option<i32>, PeerKey<'_>) {
        (&self.protocol, self.from_port, self.to_port, peer_key(&self.peer))
    }

    /// AWS's words for a rule in duplicate and not-found messages.
    fn describe(&self, egress: bool) -> String {
        let peer = match &self.peer {
            Peer::Cidr4(c) => c.to_string(),
            Peer::Cidr6(c) => c.clone(),
            Peer::Group { id, .. } => id.to_string(),
            Peer::PrefixList(p) => p.clone(),
        };
        let proto = if self.protocol == "-1" { "ALL".to_string() } else { self.protocol.to_uppercase() };
        let ports = match (self.from_port, self.to_port) {
            (Some(f), Some(t)) => format!(", from port: {f}, to port: {t}"),
            _ => String::new(),
        };
        let dir = if egress { "egress" } else { "ingress" };
        format!("peer: {peer}, {proto}{ports}, ALLOW ({dir})")
    }
}

#[derive(PartialEq, Eq)]
enum PeerKey<'a> {
    Cidr4(Ipv4Cidr),
    Cidr6(&'a str),
    Group(&'a str),
    PrefixList(&'a str),
}

fn peer_key(p: &Peer) -> PeerKey<'_> {
    match p {
        Peer::Cidr4(c) => PeerKey::Cidr4(*c),
        Peer::Cidr6(c) => PeerKey::Cidr6(c),
        Peer::Group { id, .. } => PeerKey::Group(id.as_str()),
        Peer::PrefixList(p) => PeerKey::PrefixList(p),
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: SecurityGroupId,
    pub owner: AccountId,
    pub region: Region,
    pub vpc_id: VpcId,
    pub name: String,
    pub description: String,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
    pub tags: Tags,
}

impl Resource for SecurityGroup {
    const KIND: ResourceKind = ResourceKind::SecurityGroup;
    fn id_str(&self) -> &str {
        self.id.as_str()
    }
    fn owner(&self) -> &AccountId {
        &self.owner
    }
    fn region(&self) -> &Region {
        &self.region
    }
}

/// Rules with the same protocol and ports, as one `IpPermission` shows them.
pub struct PermissionGroup<'a> {
    pub protocol: &'a str,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub rules: Vec<&'a Rule>,
}

impl SecurityGroup {
    pub fn arn(&self) -> String {
        format!("arn:aws:ec2:{}:{}:security-group/{}", self.region, self.owner, self.id)
    }

    pub fn is_default(&self) -> bool {
        self.name == "default"
    }

    pub fn rules(&self, egress: bool) -> &Vec<Rule> {
        if egress {
            &self.egress
        } else {
            &self.ingress
        }
    }

    fn rules_mut(&mut self, egress: bool) -> &mut Vec<Rule> {
        if egress {
            &mut self.egress
        } else {
            &mut self.ingress
        }
    }

    /// Folds rules into `IpPermission`s, in the order they were first added.
    pub fn permissions(&self, egress: bool) -> Vec<PermissionGroup<'_>> {
        let mut out: Vec<PermissionGroup<'_>> = Vec::new();
        for r in self.rules(egress) {
            match out.iter_mut().find(|p| p.protocol == r.protocol && p.from_port == r.from_port && p.to_port == r.to_port) {
                Some(p) => p.rules.push(r),
                None => out.push(PermissionGroup { protocol: &r.protocol, from_port: r.from_port, to_port: r.to_port, rules: vec![r] }),
            }
        }
        out
    }

    /// A fresh group with AWS's default outbound rule (all traffic anywhere).
    pub fn new(ctx_owner: &AccountId, region: &Region, vpc_id: &VpcId, name: &str, description: &str) -> SecurityGroup {
        SecurityGroup {
            id: SecurityGroupId::generate(),
            owner: ctx_owner.clone(),
            region: region.clone(),
            vpc_id: vpc_id.clone(),
            name: name.to_string(),
            description: description.to_string(),
            ingress: vec![],
            egress: vec![Rule {
                id: SecurityGroupRuleId::generate(),
                protocol: "-1".into(),
                from_port: None,
                to_port: None,
                peer: Peer::Cidr4(Ipv4Cidr::new(std::net::Ipv4Addr::UNSPECIFIED, 0).unwrap_or_else(|_| unreachable!())),
                description: None,
                tags: Tags::default(),
            }],
            tags: Tags::default(),
        }
    }

    /// A VPC's default group: members may reach each other, everything may go out.
    pub fn default_for(owner: &AccountId, region: &Region, vpc_id: &VpcId) -> SecurityGroup {
        let mut g = SecurityGroup::new(owner, region, vpc_id, "default", "default VPC security group");
        g.ingress.push(Rule {
            id: SecurityGroupRuleId::generate(),
            protocol: "-1".into(),
            from_port: None,
            to_port: None,
            peer: Peer::Group { id: g.id.clone(), owner: owner.clone(), name: "default".into() },
            description: None,
            tags: Tags::default(),
        });
        g
    }
}

fn b(v: bool) -> Cow<'static, str> {
    Cow::Borrowed(if v { "true" } else { "false" })
}

fn rule_values<'a>(rules: &'a [Rule], what: &str) -> Vec<Cow<'a, str>> {
    let mut out = Vec::new();
    for r in rules {
        match what {
            "cidr" => {
                if let Peer::Cidr4(c) = &r.peer {
                    out.push(Cow::Owned(c.to_string()))
                }
            }
            "ipv6-cidr" => {
                if let Peer::Cidr6(c) = &r.peer {
                    out.push(Cow::Borrowed(c.as_str()))
                }
            }
            "group-id" => {
                if let Peer::Group { id, .. } = &r.peer {
                    out.push(Cow::Borrowed(id.as_str()))
                }
            }
            "group-name" => {
                if let Peer::Group { name, .. } = &r.peer {
                    out.push(Cow::Borrowed(name.as_str()))
                }
            }
            "user-id" => {
                if let Peer::Group { owner, .. } = &r.peer {
                    out.push(Cow::Borrowed(owner.as_str()))
                }
            }
            "prefix-list-id" => {
                if let Peer::PrefixList(p) = &r.peer {
                    out.push(Cow::Borrowed(p.as_str()))
                }
            }
            "protocol" => out.push(Cow::Borrowed(r.protocol.as_str())),
            "from-port" => out.push(Cow::Owned(r.from_port.unwrap_or(-1).to_string())),
            "to-port" => out.push(Cow::Owned(r.to_port.unwrap_or(-1).to_string())),
            _ => {}
        }
    }
    out
}

impl Filterable for SecurityGroup {
    const FILTERS: &'static [&'static str] = &[
        "description", "group-id", "group-name", "owner-id", "vpc-id",
        "ip-permission.cidr", "ip-permission.from-port", "ip-permission.group-id", "ip-permission.group-name",
        "ip-permission.ipv6-cidr", "ip-permission.prefix-list-id", "ip-permission.protocol", "ip-permission.to-port",
        "ip-permission.user-id",
        "egress.ip-permission.cidr", "egress.ip-permission.from-port", "egress.ip-permission.group-id",
        "egress.ip-permission.group-name", "egress.ip-permission.ipv6-cidr", "egress.ip-permission.prefix-list-id",
        "egress.ip-permission.protocol", "egress.ip-permission.to-port", "egress.ip-permission.user-id",
    ];

    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        if let Some(what) = name.strip_prefix("egress.ip-permission.") {
            return rule_values(&self.egress, what);
        }
        if let Some(what) = name.strip_prefix("ip-permission.") {
            return rule_values(&self.ingress, what);
        }
        match name {
            "description" => vec![Cow::Borrowed(self.description.as_str())],
            "group-id" => vec![Cow::Borrowed(self.id.as_str())],
            "group-name" => vec![Cow::Borrowed(self.name.as_str())],
            "owner-id" => vec![Cow::Borrowed(self.owner.as_str())],
            "vpc-id" => vec![Cow::Borrowed(self.vpc_id.as_str())],
            _ => vec![],
        }
    }

    fn tags(&self) -> Option<&Tags> {
        Some(&self.tags)
    }
}

/// One rule with the group it belongs to, as `DescribeSecurityGroupRules` lists it.
#[derive(Clone, Debug)]
pub struct RuleRecord {
    pub group_id: SecurityGroupId,
    pub group_owner: AccountId,
    pub region: Region,
    pub egress: bool,
    pub rule: Rule,
}

impl RuleRecord {
    pub fn arn(&self) -> String {
        format!("arn:aws:ec2:{}:{}:security-group-rule/{}", self.region, self.group_owner, self.rule.id)
    }
}

impl Filterable for RuleRecord {
    const FILTERS: &'static [&'static str] = &["group-id", "security-group-rule-id"];
    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        match name {
            "group-id" => vec![Cow::Borrowed(self.group_id.as_str())],
            "security-group-rule-id" => vec![Cow::Borrowed(self.rule.id.as_str())],
            "is-egress" => vec![b(self.egress)],
            _ => vec![],
        }
    }
    fn tags(&self) -> Option<&Tags> {
        Some(&self.rule.tags)
    }
}

// ---- requests ----------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpRange {
    pub cidr: String,
    pub description: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct GroupPair {
    pub group_id: Option<String>,
    pub group_name: Option<String>,
    pub user_id: Option<String>,
    pub description: Option<String>,
}

/// One `IpPermissions.N` as the client sent it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpPermission {
    pub ip_protocol: Option<String>,
    pub from_port: Option<i64>,
    pub to_port: Option<i64>,
    pub ip_ranges: Vec<IpRange>,
    pub ipv6_ranges: Vec<IpRange>,
    pub groups: Vec<GroupPair>,
    pub prefix_list_ids: Vec<IpRange>,
}

/// A group named by id, or by name in the default VPC (the older form).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupRef {
    Id(SecurityGroupId),
    Name(String),
}

#[derive(Clone, Debug)]
pub struct CreateSecurityGroup {
    pub name: String,
    pub description: String,
    pub vpc_id: Option<VpcId>,
    pub tag_specs: Vec<TagSpecification>,
}

#[derive(Clone, Debug)]
pub struct Authorize {
    pub group: GroupRef,
    pub egress: bool,
    pub permissions: Vec<IpPermission>,
    pub tag_specs: Vec<TagSpecification>,
}

#[derive(Clone, Debug)]
pub struct Revoke {
    pub group: GroupRef,
    pub egress: bool,
    pub permissions: Vec<IpPermission>,
    pub rule_ids: Vec<SecurityGroupRuleId>,
}

#[derive(Clone, Debug, Default)]
pub struct RevokeOutcome {
    /// Rules asked for that the group didn't have (`unknownIpPermissionSet`).
    pub unknown: Vec<IpPermission>,
}

#[derive(Clone, Debug, Default)]
pub struct DescribeSecurityGroups {
    pub group_ids: Vec<SecurityGroupId>,
    pub group_names: Vec<String>,
    pub filters: Vec<Filter>,
    pub page: Page,
}

#[derive(Clone, Debug, Default)]
pub struct DescribeSecurityGroupRules {
    pub rule_ids: Vec<SecurityGroupRuleId>,
    pub filters: Vec<Filter>,
    pub page: Page,
}

/// `SecurityGroupRule.N.SecurityGroupRule` of `ModifySecurityGroupRules`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RuleRequest {
    pub ip_protocol: Option<String>,
    pub from_port: Option<i64>,
    pub to_port: Option<i64>,
    pub cidr_ipv4: Option<String>,
    pub cidr_ipv6: Option<String>,
    pub prefix_list_id: Option<String>,
    pub referenced_group_id: Option<String>,
    pub description: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ModifySecurityGroupRules {
    pub group_id: SecurityGroupId,
    pub rules: Vec<(SecurityGroupRuleId, RuleRequest)>,
}

// ---- validation ----------------------------------------------------------------

/// Canonical protocol name: `tcp`, `udp`, `icmp`, `icmpv6`, `-1`, or a number.
pub fn normalize_protocol(p: &str) -> Result<String> {
    let lower = p.to_ascii_lowercase();
    let out = match lower.as_str() {
        "tcp" | "6" => "tcp".to_string(),
        "udp" | "17" => "udp".to_string(),
        "icmp" | "1" => "icmp".to_string(),
        "icmpv6" | "58" => "icmpv6".to_string(),
        "-1" | "all" => "-1".to_string(),
        n => match n.parse::<u16>() {
            Ok(v) if v <= 255 => v.to_string(),
            _ => {
                return Err(Error::InvalidParameterValue(format!(
                    "Invalid value '{p}' for IP protocol. Unknown protocol."
                )))
            }
        },
    };
    Ok(out)
}

/// Checks and normalises the port range for a protocol.
fn ports(protocol: &str, from: Option<i64>, to: Option<i64>) -> Result<(Option<i32>, Option<i32>)> {
    match protocol {
        "tcp" | "udp" => {
            let (Some(f), Some(t)) = (from, to) else {
                return Err(Error::InvalidParameterValue(format!(
                    "Invalid value for portRange. Must specify both from and to ports with TCP/UDP ({protocol})."
                )));
            };
            if !(0..=65535).contains(&f) || !(0..=65535).contains(&t) || f > t {
                return Err(Error::InvalidParameterValue(format!(
                    "Invalid port range {f}-{t}: ports are 0 to 65535 and FromPort must not exceed ToPort."
                )));
            }
            Ok((Some(f as i32), Some(t as i32)))
        }
        "icmp" | "icmpv6" => {
            // For ICMP, FromPort is the type and ToPort the code; -1 means any.
            let f = from.unwrap_or(-1);
            let t = to.unwrap_or(-1);
            if !(-1..=255).contains(&f) || !(-1..=255).contains(&t) {
                return Err(Error::InvalidParameterValue(format!(
                    "Invalid ICMP type/code {f}/{t}: each is -1 (any) or 0 to 255."
                )));
            }
            if f == -1 && t != -1 {
                return Err(Error::InvalidParameterValue(
                    "Invalid ICMP code: a code needs a specific ICMP type (FromPort).".into(),
                ));
            }
            Ok((Some(f as i32), Some(t as i32)))
        }
        _ => Ok((None, None)),
    }
}

fn parse_cidr4(s: &str) -> Result<Ipv4Cidr> {
    s.parse::<Ipv4Cidr>()
        .map_err(|_| Error::InvalidParameterValue(format!("CIDR block {s} is malformed")))
}

fn parse_cidr6(s: &str) -> Result<String> {
    let bad = || Error::InvalidParameterValue(format!("CIDR block {s} is malformed"));
    let (addr, len) = s.split_once('/').ok_or_else(bad)?;
    let addr: Ipv6Addr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len > 128 {
        return Err(bad());
    }
    let bits = u128::from(addr);
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - len as u32) };
    if bits & !mask != 0 {
        return Err(bad());
    }
    Ok(format!("{addr}/{len}"))
}

fn check_description(d: &Option<String>) -> Result<()> {
    if let Some(d) = d {
        if d.chars().count() > 255 {
            return Err(Error::InvalidParameterValue("Rule descriptions are limited to 255 characters".into()));
        }
    }
    Ok(())
}

// ---- the service ----------------------------------------------------------------

impl Ec2 {
    /// Finds a group the caller owns, by id or by name in the default VPC.
    pub(crate) fn find_group(&self, tx: &dyn ReadTx, ctx: &Ctx, r: &GroupRef) -> Result<SecurityGroup> {
        match r {
            GroupRef::Id(id) => tx
                .load_owned::<SecurityGroup>(id.as_str(), &ctx.account, &ctx.region)?
                .ok_or_else(|| Error::not_found(ResourceKind::SecurityGroup, id.as_str())),
            GroupRef::Name(name) => {
                let vpc = self.default_vpc(tx, ctx)?;
                let Some(vpc) = vpc else {
                    return Err(Error::VpcIdNotSpecified);
                };
                self.group_by_name(tx, ctx, &vpc.id, name)?
                    .ok_or_else(|| Error::GroupNameNotFound { name: name.clone(), vpc: Some(vpc.id.to_string()) })
            }
        }
    }

    pub(crate) fn group_by_name(&self, tx: &dyn ReadTx, ctx: &Ctx, vpc: &VpcId, name: &str) -> Result<Option<SecurityGroup>> {
        Ok(tx
            .list_of::<SecurityGroup>(&ctx.account, &ctx.region)?
            .into_iter()
            .find(|g| &g.vpc_id == vpc && g.name == name))
    }

    pub fn create_security_group(&self, ctx: &Ctx, req: CreateSecurityGroup) -> Result<SecurityGroup> {
        if req.name.is_empty() {
            return Err(Error::MissingParameter("GroupName".into()));
        }
        if req.description.is_empty() {
            return Err(Error::MissingParameter("GroupDescription".into()));
        }
        if req.name.chars().count() > 255 || req.description.chars().count() > 255 {
            return Err(Error::InvalidParameterValue(
                "Security group names and descriptions are limited to 255 characters".into(),
            ));
        }
        if req.name.to_ascii_lowercase().starts_with("sg-") {
            return Err(Error::InvalidParameterValue(format!(
                "Invalid security group name '{}': names may not start with 'sg-'",
                req.name
            )));
        }
        if req.name == "default" {
            return Err(Error::GroupReserved(req.name));
        }
        let tags = tags::for_kind(&req.tag_specs, ResourceKind::SecurityGroup, &[ResourceKind::SecurityGroup])?;
        let mut tx = self.begin(ctx)?;
        let vpc = match &req.vpc_id {
            Some(id) => tx
                .load_owned::<Vpc>(id.as_str(), &ctx.account, &ctx.region)?
                .ok_or_else(|| Error::not_found(ResourceKind::Vpc, id.as_str()))?,
            None => self.default_vpc(tx.as_ref(), ctx)?.ok_or(Error::VpcIdNotSpecified)?,
        };
        let existing = tx.list_of::<SecurityGroup>(&ctx.account, &ctx.region)?;
        if existing.iter().any(|g| g.vpc_id == vpc.id && g.name == req.name) {
            return Err(Error::Duplicate {
                what: Duplicate::SecurityGroup,
                message: format!("The security group '{}' already exists for VPC '{}'", req.name, vpc.id),
            });
        }
        if existing.iter().filter(|g| g.vpc_id == vpc.id).count() >= self.config.limits.security_groups_per_vpc {
            return Err(Error::LimitExceeded {
                limit: Limit::SecurityGroups,
                message: "The maximum number of security groups for the VPC has been reached.".into(),
            });
        }
        let mut g = SecurityGroup::new(&ctx.account, &ctx.region, &vpc.id, &req.name, &req.description);
        g.tags = tags::from_list(&tags, g.id.as_str())?;
        tx.save(&g)?;
        tx.commit()?;
        self.sync_network([&g.vpc_id]);
        Ok(g)
    }

    pub fn delete_security_group(&self, ctx: &Ctx, r: GroupRef) -> Result<SecurityGroup> {
        let mut tx = self.begin(ctx)?;
        let g = self.find_group(tx.as_ref(), ctx, &r)?;
        if g.is_default() {
            return Err(Error::CannotDelete(format!(
                "the specified group: \"{}\" name: \"default\" cannot be deleted by a user",
                g.id
            )));
        }
        let in_use = tx
            .list_of::<Instance>(&ctx.account, &ctx.region)?
            .iter()
            .any(|i| i.state.holds_resources() && i.security_groups.iter().any(|s| s.id == g.id));
        let referenced = tx.list_of::<SecurityGroup>(&ctx.account, &ctx.region)?.iter().any(|other| {
            other.id != g.id
                && other.ingress.iter().chain(other.egress.iter()).any(|r| matches!(&r.peer, Peer::Group { id, .. } if *id == g.id))
        });
        if in_use || referenced {
            return Err(Error::DependencyViolation(format!("resource {} has a dependent object", g.id)));
        }
        tx.remove(&g)?;
        tx.commit()?;
        Ok(g)
    }

    pub fn describe_security_groups(&self, ctx: &Ctx, req: DescribeSecurityGroups) -> Result<(Vec<SecurityGroup>, Option<String>)> {
        filter::check::<SecurityGroup>(&req.filters)?;
        req.page.validate(5, 1000)?;
        if req.page.max_results.is_some() && !req.group_ids.is_empty() {
            return Err(Error::InvalidParameterCombination(
                "The parameter groupIds cannot be used with the parameter maxResults".into(),
            ));
        }
        self.ensure_scope(ctx)?;
        let tx = self.store.read()?;
        let all = tx.list_of::<SecurityGroup>(&ctx.account, &ctx.region)?;
        let missing: Vec<String> = req
            .group_ids
            .iter()
            .filter(|id| !all.iter().any(|g| &g.id == *id))
            .map(|id| id.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(Error::NotFound { kind: ResourceKind::SecurityGroup, ids: missing });
        }
        if !req.group_names.is_empty() {
            let default_vpc = self.default_vpc(tx.as_ref(), ctx)?;
            for n in &req.group_names {
                let found = default_vpc.as_ref().is_some_and(|v| all.iter().any(|g| g.vpc_id == v.id && &g.name == n));
                if !found {
                    return Err(Error::GroupNameNotFound { name: n.clone(), vpc: default_vpc.map(|v| v.id.to_string()) });
                }
            }
        }
        let default_vpc_id = if req.group_names.is_empty() { None } else { self.default_vpc(tx.as_ref(), ctx)?.map(|v| v.id) };
        let picked: Vec<SecurityGroup> = all
            .into_iter()
            .filter(|g| req.group_ids.is_empty() || req.group_ids.contains(&g.id))
            .filter(|g| req.group_names.is_empty() || (Some(&g.vpc_id) == default_vpc_id.as_ref() && req.group_names.contains(&g.name)))
            .filter(|g| filter::matches(g, &req.filters))
            .collect();
        req.page.apply(picked)
    }

    /// Expands `IpPermissions` into rules of `group`, resolving referenced groups.
    fn expand(&self, tx: &dyn ReadTx, ctx: &Ctx, group: &SecurityGroup, perms: &[IpPermission]) -> Result<Vec<Rule>> {
        let mut out = Vec::new();
        for p in perms {
            let Some(proto) = p.ip_protocol.as_deref() else {
                return Err(Error::MissingParameter("IpPermissions.N.IpProtocol".into()));
            };
            let protocol = normalize_protocol(proto)?;
            let (from, to) = ports(&protocol, p.from_port, p.to_port)?;
            if p.ip_ranges.is_empty() && p.ipv6_ranges.is_empty() && p.groups.is_empty() && p.prefix_list_ids.is_empty() {
                return Err(Error::InvalidParameterValue(
                    "A permission needs at least one source or destination: an IpRange, Ipv6Range, PrefixListId or UserIdGroupPair".into(),
                ));
            }
            let mut push = |peer: Peer, description: &Option<String>| -> Result<()> {
                check_description(description)?;
                out.push(Rule {
                    id: SecurityGroupRuleId::generate(),
                    protocol: protocol.clone(),
                    from_port: from,
                    to_port: to,
                    peer,
                    description: description.clone().filter(|d| !d.is_empty()),
                    tags: Tags::default(),
                });
                Ok(())
            };
            for r in &p.ip_ranges {
                push(Peer::Cidr4(parse_cidr4(&r.cidr)?), &r.description)?;
            }
            for r in &p.ipv6_ranges {
                push(Peer::Cidr6(parse_cidr6(&r.cidr)?), &r.description)?;
            }
            // Strato has no managed prefix lists yet, so none can be named.
            if let Some(r) = p.prefix_list_ids.first() {
                return Err(Error::InvalidParameterValue(format!("The prefix list '{}' does not exist", r.cidr)));
            }
            for pair in &p.groups {
                if let Some(user) = &pair.user_id {
                    if user != ctx.account.as_str() {
                        return Err(Error::InvalidParameterValue(format!(
                            "Referencing security groups of other accounts ({user}) needs VPC peering, which Strato does not offer yet"
                        )));
                    }
                }
                let peer_group = match (&pair.group_id, &pair.group_name) {
                    (Some(id), _) => {
                        let id = SecurityGroupId::parse(id)?;
                        tx.load_owned::<SecurityGroup>(id.as_str(), &ctx.account, &ctx.region)?
                            .ok_or_else(|| Error::not_found(ResourceKind::SecurityGroup, id.as_str()))?
                    }
                    (None, Some(name)) => self
                        .group_by_name(tx, ctx, &group.vpc_id, name)?
                        .ok_or_else(|| Error::GroupNameNotFound { name: name.clone(), vpc: Some(group.vpc_id.to_string()) })?,
                    (None, None) => {
                        return Err(Error::MissingParameter("IpPermissions.N.Groups.M.GroupId".into()));
                    }
                };
                if peer_group.vpc_id != group.vpc_id {
                    return Err(Error::InvalidParameter(format!(
                        "You have specified two resources that belong to different networks: {} is in {} and {} is in {}.",
                        peer_group.id, peer_group.vpc_id, group.id, group.vpc_id
                    )));
                }
                push(Peer::Group { id: peer_group.id.clone(), owner: peer_group.owner.clone(), name: peer_group.name.clone() }, &pair.description)?;
            }
        }
        Ok(out)
    }

    pub fn authorize_security_group(&self, ctx: &Ctx, req: Authorize) -> Result<Vec<RuleRecord>> {
        if req.permissions.is_empty() {
            return Err(Error::MissingParameter("IpPermissions".into()));
        }
        let rule_tags = tags::for_kind(&req.tag_specs, ResourceKind::SecurityGroupRule, &[ResourceKind::SecurityGroupRule])?;
        let mut tx = self.begin(ctx)?;
        let mut g = self.find_group(tx.as_ref(), ctx, &req.group)?;
        let mut new_rules = self.expand(tx.as_ref(), ctx, &g, &req.permissions)?;
        for (i, r) in new_rules.iter().enumerate() {
            let dup_existing = g.rules(req.egress).iter().any(|e| e.key() == r.key());
            let dup_request = new_rules[..i].iter().any(|e| e.key() == r.key());
            if dup_existing || dup_request {
                return Err(Error::Duplicate {
                    what: Duplicate::Permission,
                    message: format!("the specified rule \"{}\" already exists", r.describe(req.egress)),
                });
            }
        }
        if g.rules(req.egress).len() + new_rules.len() > self.config.limits.rules_per_security_group {
            return Err(Error::LimitExceeded {
                limit: Limit::RulesPerSecurityGroup,
                message: "The maximum number of rules per security group has been reached.".into(),
            });
        }
        for r in &mut new_rules {
            r.tags = tags::from_list(&rule_tags, r.id.as_str())?;
        }
        g.rules_mut(req.egress).extend(new_rules.iter().cloned());
        tx.save(&g)?;
        tx.commit()?;
        self.sync_network([&g.vpc_id]);
        Ok(new_rules
            .into_iter()
            .map(|rule| RuleRecord { group_id: g.id.clone(), group_owner: g.owner.clone(), region: g.region.clone(), egress: req.egress, rule })
            .collect())
    }

    pub fn revoke_security_group(&self, ctx: &Ctx, req: Revoke) -> Result<RevokeOutcome> {
        if req.permissions.is_empty() && req.rule_ids.is_empty() {
            return Err(Error::MissingParameter("IpPermissions or SecurityGroupRuleIds".into()));
        }
        if !req.permissions.is_empty() && !req.rule_ids.is_empty() {
            return Err(Error::InvalidParameterCombination(
                "Specify either IpPermissions or SecurityGroupRuleIds, not both".into(),
            ));
        }
        let mut tx = self.begin(ctx)?;
        let mut g = self.find_group(tx.as_ref(), ctx, &req.group)?;
        let mut outcome = RevokeOutcome::default();
        if !req.rule_ids.is_empty() {
            let missing: Vec<String> = req
                .rule_ids
                .iter()
                .filter(|id| !g.rules(req.egress).iter().any(|r| &r.id == *id))
                .map(|id| id.to_string())
                .collect();
            if !missing.is_empty() {
                return Err(Error::NotFound { kind: ResourceKind::SecurityGroupRule, ids: missing });
            }
            g.rules_mut(req.egress).retain(|r| !req.rule_ids.contains(&r.id));
        } else {
            let mut removed_any = false;
            for p in &req.permissions {
                let wanted = self.expand(tx.as_ref(), ctx, &g, std::slice::from_ref(p))?;
                let present: Vec<bool> =
                    wanted.iter().map(|w| g.rules(req.egress).iter().any(|r| r.key() == w.key())).collect();
                if present.iter().any(|p| !p) {
                    outcome.unknown.push(p.clone());
                }
                let keys: Vec<_> = wanted.iter().map(|w| w.key()).collect();
                let before = g.rules(req.egress).len();
                let mut kept = g.rules(req.egress).clone();
                kept.retain(|r| !keys.contains(&r.key()));
                removed_any |= kept.len() != before;
                *g.rules_mut(req.egress) = kept;
            }
            if !removed_any {
                return Err(Error::PermissionNotFound(
                    "The specified rule does not exist in this security group.".into(),
                ));
            }
        }
        tx.save(&g)?;
        tx.commit()?;
        self.sync_network([&g.vpc_id]);
        Ok(outcome)
    }

    pub fn describe_security_group_rules(&self, ctx: &Ctx, req: DescribeSecurityGroupRules) -> Result<(Vec<RuleRecord>, Option<String>)> {
        filter::check::<RuleRecord>(&req.filters)?;
        req.page.validate(5, 1000)?;
        self.ensure_scope(ctx)?;
        let tx = self.store.read()?;
        let mut all = Vec::new();
        for g in tx.list_of::<SecurityGroup>(&ctx.account, &ctx.region)? {
            for (egress, rules) in [(false, &g.ingress), (true, &g.egress)] {
                for r in rules {
                    all.push(RuleRecord { group_id: g.id.clone(), group_owner: g.owner.clone(), region: g.region.clone(), egress, rule: r.clone() });
                }
            }
        }
        let missing: Vec<String> = req
            .rule_ids
            .iter()
            .filter(|id| !all.iter().any(|r| &r.rule.id == *id))
            .map(|id| id.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(Error::NotFound { kind: ResourceKind::SecurityGroupRule, ids: missing });
        }
        let picked = all
            .into_iter()
            .filter(|r| req.rule_ids.is_empty() || req.rule_ids.contains(&r.rule.id))
            .filter(|r| filter::matches(r, &req.filters))
            .collect();
        req.page.apply(picked)
    }

    pub fn modify_security_group_rules(&self, ctx: &Ctx, req: ModifySecurityGroupRules) -> Result<()> {
        if req.rules.is_empty() {
            return Err(Error::MissingParameter("SecurityGroupRules".into()));
        }
        let mut tx = self.begin(ctx)?;
        let mut g = self.find_group(tx.as_ref(), ctx, &GroupRef::Id(req.group_id.clone()))?;
        for (rule_id, spec) in &req.rules {
            let egress = if g.ingress.iter().any(|r| &r.id == rule_id) {
                false
            } else if g.egress.iter().any(|r| &r.id == rule_id) {
                true
            } else {
                return Err(Error::not_found(ResourceKind::SecurityGroupRule, rule_id.as_str()));
            };
            let sources = [spec.cidr_ipv4.is_some(), spec.cidr_ipv6.is_some(), spec.prefix_list_id.is_some(), spec.referenced_group_id.is_some()];
            if sources.iter().filter(|s| **s).count() != 1 {
                return Err(Error::InvalidParameterCombination(
                    "A security group rule needs exactly one of CidrIpv4, CidrIpv6, PrefixListId or ReferencedGroupId".into(),
                ));
            }
            let perm = IpPermission {
                ip_protocol: spec.ip_protocol.clone(),
                from_port: spec.from_port,
                to_port: spec.to_port,
                ip_ranges: spec.cidr_ipv4.iter().map(|c| IpRange { cidr: c.clone(), description: spec.description.clone() }).collect(),
                ipv6_ranges: spec.cidr_ipv6.iter().map(|c| IpRange { cidr: c.clone(), description: spec.description.clone() }).collect(),
                groups: spec
                    .referenced_group_id
                    .iter()
                    .map(|id| GroupPair { group_id: Some(id.clone()), description: spec.description.clone(), ..Default::default() })
                    .collect(),
                prefix_list_ids: spec.prefix_list_id.iter().map(|c| IpRange { cidr: c.clone(), description: None }).collect(),
            };
            let mut replacement = self.expand(tx.as_ref(), ctx, &g, &[perm])?.remove(0);
            replacement.id = rule_id.clone();
            let rules = g.rules_mut(egress);
            if rules.iter().any(|r| &r.id != rule_id && r.key() == replacement.key()) {
                return Err(Error::Duplicate {
                    what: Duplicate::Permission,
                    message: format!("the specified rule \"{}\" already exists", replacement.describe(egress)),
                });
            }
            if let Some(slot) = rules.iter_mut().find(|r| &r.id == rule_id) {
                replacement.tags = std::mem::take(&mut slot.tags);
                *slot = replacement;
            }
        }
        tx.save(&g)?;
        tx.commit()?;
        self.sync_network([&g.vpc_id]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_normalise() {
        assert_eq!(normalize_protocol("TCP").ok().as_deref(), Some("tcp"));
        assert_eq!(normalize_protocol("6").ok().as_deref(), Some("tcp"));
        assert_eq!(normalize_protocol("all").ok().as_deref(), Some("-1"));
        assert_eq!(normalize_protocol("47").ok().as_deref(), Some("47"));
        assert!(normalize_protocol("256").is_err());
        assert!(normalize_protocol("tcpp").is_err());
    }

    #[test]
    fn port_ranges_are_checked() {
        assert_eq!(ports("tcp", Some(22), Some(22)).ok(), Some((Some(22), Some(22))));
        assert!(ports("tcp", Some(23), Some(22)).is_err());
        assert!(ports("tcp", Some(0), Some(65536)).is_err());
        assert!(ports("udp", None, Some(53)).is_err());
        assert_eq!(ports("-1", Some(1), Some(2)).ok(), Some((None, None)));
        assert_eq!(ports("icmp", Some(8), Some(-1)).ok(), Some((Some(8), Some(-1))));
        assert!(ports("icmp", Some(-1), Some(0)).is_err());
    }

    #[test]
    fn ipv6_cidrs_are_checked() {
        assert_eq!(parse_cidr6("::/0").ok().as_deref(), Some("::/0"));
        assert_eq!(parse_cidr6("2001:db8::/32").ok().as_deref(), Some("2001:db8::/32"));
        assert!(parse_cidr6("2001:db8::1/32").is_err());
        assert!(parse_cidr6("2001:db8::/129").is_err());
        assert!(parse_cidr6("nonsense").is_err());
    }

    #[test]
    fn permissions_fold_by_protocol_and_ports() {
        let owner = AccountId::parse("123456789012").expect("acct");
        let region = Region::new_unchecked("us-east-1");
        let mut g = SecurityGroup::new(&owner, &region, &VpcId::generate(), "web", "web");
        for cidr in ["10.0.0.0/8", "192.168.0.0/16"] {
            g.ingress.push(Rule {
                id: SecurityGroupRuleId::generate(),
                protocol: "tcp".into(),
                from_port: Some(22),
                to_port: Some(22),
                peer: Peer::Cidr4(cidr.parse().expect("cidr")),
                description: None,
                tags: Tags::default(),
            });
        }
        let perms = g.permissions(false);
        assert_eq!(perms.len(), 1);
        assert_eq!(perms[0].rules.len(), 2);
        assert_eq!(g.permissions(true).len(), 1, "the default egress rule");
    }
}
