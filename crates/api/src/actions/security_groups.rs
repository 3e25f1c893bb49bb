//! Security groups and their rules.

use strato_core::error::Error;
use strato_core::ids::{SecurityGroupId, SecurityGroupRuleId, VpcId};
use strato_core::resources::security_groups::{
    Authorize, CreateSecurityGroup, DescribeSecurityGroupRules, DescribeSecurityGroups, GroupPair, GroupRef, IpPermission,
    IpRange, ModifySecurityGroupRules, Peer, Revoke, RuleRecord, RuleRequest, SecurityGroup,
};

use super::common::{next_token, return_true, tag_set};
use crate::query::Scope;
use crate::xml::Xml;
use crate::{ApiError, Call};

fn ranges(s: &Scope<'_>, list: &str, field: &str) -> Result<Vec<IpRange>, Error> {
    s.structs(list)?
        .into_iter()
        .map(|r| Ok(IpRange { cidr: r.required(field)?, description: r.string("Description") }))
        .collect()
}

fn permission(s: &Scope<'_>) -> Result<IpPermission, Error> {
    Ok(IpPermission {
        ip_protocol: s.string("IpProtocol"),
        from_port: s.int("FromPort")?,
        to_port: s.int("ToPort")?,
        ip_ranges: ranges(s, "IpRanges", "CidrIp")?,
        ipv6_ranges: ranges(s, "Ipv6Ranges", "CidrIpv6")?,
        prefix_list_ids: ranges(s, "PrefixListIds", "PrefixListId")?,
        groups: s
            .structs("Groups")?
            .into_iter()
            .map(|g| {
                let _ = g.string("VpcId");
                let _ = g.string("VpcPeeringConnectionId");
                Ok(GroupPair {
                    group_id: g.string("GroupId"),
                    group_name: g.string("GroupName"),
                    user_id: g.string("UserId"),
                    description: g.string("Description"),
                })
            })
            .collect::<Result<_, Error>>()?,
    })
}

/// The permissions of a request: `IpPermissions.N`, or the older flat
/// parameters (`IpProtocol`, `CidrIp`, `SourceSecurityGroupName`, …).
fn permissions(p: &Scope<'_>) -> Result<Vec<IpPermission>, Error> {
    let listed: Vec<IpPermission> = p.structs("IpPermissions")?.iter().map(permission).collect::<Result<_, _>>()?;
    let flat_names = ["IpProtocol", "FromPort", "ToPort", "CidrIp", "SourceSecurityGroupName", "SourceSecurityGroupOwnerId"];
    let flat_given = flat_names.iter().any(|n| p.has(n));
    if !flat_given {
        return Ok(listed);
    }
    if !listed.is_empty() {
        return Err(Error::InvalidParameterCombination(
            "The parameter IpPermissions cannot be used with IpProtocol, FromPort, ToPort, CidrIp or SourceSecurityGroupName".into(),
        ));
    }
    let source_group = p.string("SourceSecurityGroupName");
    let owner = p.string("SourceSecurityGroupOwnerId");
    let cidr = p.string("CidrIp");
    let mut perm = IpPermission {
        ip_protocol: Some(p.string("IpProtocol").unwrap_or_else(|| "-1".into())),
        from_port: p.int("FromPort")?,
        to_port: p.int("ToPort")?,
        ..Default::default()
    };
    if let Some(c) = cidr {
        perm.ip_ranges.push(IpRange { cidr: c, description: None });
    }
    if let Some(name) = source_group {
        perm.groups.push(GroupPair { group_name: Some(name), user_id: owner, ..Default::default() });
    }
    Ok(vec![perm])
}

fn group_ref(p: &Scope<'_>) -> Result<GroupRef, Error> {
    match (p.id("GroupId", SecurityGroupId::parse)?, p.string("GroupName").filter(|s| !s.is_empty())) {
        (Some(id), _) => Ok(GroupRef::Id(id)),
        (None, Some(name)) => Ok(GroupRef::Name(name)),
        (None, None) => Err(Error::MissingParameter("GroupId".into())),
    }
}

fn render_rule(x: &mut Xml, r: &RuleRecord) {
    x.leaf("securityGroupRuleId", &r.rule.id);
    x.leaf("groupId", &r.group_id);
    x.leaf("groupOwnerId", &r.group_owner);
    x.bool("isEgress", r.egress);
    x.leaf("ipProtocol", &r.rule.protocol);
    x.leaf("fromPort", r.rule.from_port.unwrap_or(-1));
    x.leaf("toPort", r.rule.to_port.unwrap_or(-1));
    match &r.rule.peer {
        Peer::Cidr4(c) => x.leaf("cidrIpv4", c),
        Peer::Cidr6(c) => x.leaf("cidrIpv6", c),
        Peer::PrefixList(p) => x.leaf("prefixListId", p),
        Peer::Group { id, owner, .. } => x.node("referencedGroupInfo", |x| {
            x.leaf("groupId", id);
            x.leaf("userId", owner);
        }),
    }
    x.opt("description", r.rule.description.as_ref());
    tag_set(x, &r.rule.tags);
    x.leaf("securityGroupRuleArn", r.arn());
}

fn render_permissions(x: &mut Xml, tag: &str, g: &SecurityGroup, egress: bool) {
    x.list(tag, g.permissions(egress), |x, p| {
        x.leaf("ipProtocol", p.protocol);
        x.opt("fromPort", p.from_port);
        x.opt("toPort", p.to_port);
        let rules = &p.rules;
        x.list("groups", rules.iter().filter_map(|r| match &r.peer {
            Peer::Group { id, owner, name } => Some((r, id, owner, name)),
            _ => None,
        }), |x, (r, id, owner, _name)| {
            x.leaf("userId", owner);
            x.leaf("groupId", id);
            x.opt("description", r.description.as_ref());
        });
        x.list("ipRanges", rules.iter().filter_map(|r| match &r.peer {
            Peer::Cidr4(c) => Some((r, c)),
            _ => None,
        }), |x, (r, c)| {
            x.leaf("cidrIp", c);
            x.opt("description", r.description.as_ref());
        });
        x.list("ipv6Ranges", rules.iter().filter_map(|r| match &r.peer {
            Peer::Cidr6(c) => Some((r, c)),
            _ => None,
        }), |x, (r, c)| {
            x.leaf("cidrIpv6", c);
            x.opt("description", r.description.as_ref());
        });
        x.list("prefixListIds", rules.iter().filter_map(|r| match &r.peer {
            Peer::PrefixList(p) => Some((r, p)),
            _ => None,
        }), |x, (r, p)| {
            x.leaf("prefixListId", p);
            x.opt("description", r.description.as_ref());
        });
    });
}

fn render_group(x: &mut Xml, g: &SecurityGroup) {
    x.leaf("ownerId", &g.owner);
    x.leaf("groupId", &g.id);
    x.leaf("groupName", &g.name);
    x.leaf("groupDescription", &g.description);
    x.leaf("vpcId", &g.vpc_id);
    x.leaf("securityGroupArn", g.arn());
    render_permissions(x, "ipPermissions", g, false);
    render_permissions(x, "ipPermissionsEgress", g, true);
    tag_set(x, &g.tags);
}

pub fn create_security_group(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = CreateSecurityGroup {
        name: c.p.required("GroupName")?,
        description: c.p.required("GroupDescription")?,
        vpc_id: c.p.id("VpcId", VpcId::parse)?,
        tag_specs: c.p.tag_specs()?,
    };
    c.ready()?;
    let g = c.ec2.create_security_group(&c.ctx, req)?;
    return_true(&mut c.xml);
    c.xml.leaf("groupId", &g.id);
    c.xml.leaf("securityGroupArn", g.arn());
    tag_set(&mut c.xml, &g.tags);
    Ok(())
}

pub fn describe_security_groups(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeSecurityGroups {
        group_ids: c.p.ids("GroupId", SecurityGroupId::parse)?,
        group_names: c.p.strings("GroupName")?,
        filters: c.p.filters()?,
        page: c.p.page()?,
    };
    c.ready()?;
    let (groups, next) = c.ec2.describe_security_groups(&c.ctx, req)?;
    c.xml.list("securityGroupInfo", groups.iter(), render_group);
    next_token(&mut c.xml, next);
    Ok(())
}

pub fn delete_security_group(c: &mut Call<'_>) -> Result<(), ApiError> {
    let r = group_ref(&c.p)?;
    c.ready()?;
    let g = c.ec2.delete_security_group(&c.ctx, r)?;
    return_true(&mut c.xml);
    c.xml.leaf("groupId", &g.id);
    Ok(())
}

fn authorize(c: &mut Call<'_>, egress: bool) -> Result<(), ApiError> {
    let group = if egress {
        GroupRef::Id(c.p.required_id("GroupId", SecurityGroupId::parse)?)
    } else {
        group_ref(&c.p)?
    };
    let req = Authorize { group, egress, permissions: permissions(&c.p)?, tag_specs: c.p.tag_specs()? };
    c.ready()?;
    let rules = c.ec2.authorize_security_group(&c.ctx, req)?;
    return_true(&mut c.xml);
    c.xml.list("securityGroupRuleSet", rules.iter(), render_rule);
    Ok(())
}

pub fn authorize_ingress(c: &mut Call<'_>) -> Result<(), ApiError> {
    authorize(c, false)
}

pub fn authorize_egress(c: &mut Call<'_>) -> Result<(), ApiError> {
    authorize(c, true)
}

fn render_unknown(x: &mut Xml, perms: &[IpPermission]) {
    x.list("unknownIpPermissionSet", perms.iter(), |x, p| {
        x.opt("ipProtocol", p.ip_protocol.as_ref());
        x.opt("fromPort", p.from_port);
        x.opt("toPort", p.to_port);
        x.list("ipRanges", p.ip_ranges.iter(), |x, r| x.leaf("cidrIp", &r.cidr));
        x.list("ipv6Ranges", p.ipv6_ranges.iter(), |x, r| x.leaf("cidrIpv6", &r.cidr));
        x.list("groups", p.groups.iter(), |x, g| {
            x.opt("groupId", g.group_id.as_ref());
            x.opt("groupName", g.group_name.as_ref());
        });
    });
}

fn revoke(c: &mut Call<'_>, egress: bool) -> Result<(), ApiError> {
    let group = if egress {
        GroupRef::Id(c.p.required_id("GroupId", SecurityGroupId::parse)?)
    } else {
        group_ref(&c.p)?
    };
    let req = Revoke {
        group,
        egress,
        permissions: permissions(&c.p)?,
        rule_ids: c.p.ids("SecurityGroupRuleId", SecurityGroupRuleId::parse)?,
    };
    c.ready()?;
    let outcome = c.ec2.revoke_security_group(&c.ctx, req)?;
    return_true(&mut c.xml);
    if !outcome.unknown.is_empty() {
        render_unknown(&mut c.xml, &outcome.unknown);
    }
    Ok(())
}

pub fn revoke_ingress(c: &mut Call<'_>) -> Result<(), ApiError> {
    revoke(c, false)
}

pub fn revoke_egress(c: &mut Call<'_>) -> Result<(), ApiError> {
    revoke(c, true)
}

pub fn describe_security_group_rules(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeSecurityGroupRules {
        rule_ids: c.p.ids("SecurityGroupRuleId", SecurityGroupRuleId::parse)?,
        filters: c.p.filters()?,
        page: c.p.page()?,
    };
    c.ready()?;
    let (rules, next) = c.ec2.describe_security_group_rules(&c.ctx, req)?;
    c.xml.list("securityGroupRuleSet", rules.iter(), render_rule);
    next_token(&mut c.xml, next);
    Ok(())
}

pub fn modify_security_group_rules(c: &mut Call<'_>) -> Result<(), ApiError> {
    let group_id = c.p.required_id("GroupId", SecurityGroupId::parse)?;
    let mut rules = Vec::new();
    for r in c.p.structs("SecurityGroupRule")? {
        let id = r.required_id("SecurityGroupRuleId", SecurityGroupRuleId::parse)?;
        let s = r.nested("SecurityGroupRule");
        rules.push((
            id,
            RuleRequest {
                ip_protocol: s.string("IpProtocol"),
                from_port: s.int("FromPort")?,
                to_port: s.int("ToPort")?,
                cidr_ipv4: s.string("CidrIpv4"),
                cidr_ipv6: s.string("CidrIpv6"),
                prefix_list_id: s.string("PrefixListId"),
                referenced_group_id: s.string("ReferencedGroupId"),
                description: s.string("Description"),
            },
        ));
    }
    c.ready()?;
    c.ec2.modify_security_group_rules(&c.ctx, ModifySecurityGroupRules { group_id, rules })?;
    return_true(&mut c.xml);
    Ok(())
}
