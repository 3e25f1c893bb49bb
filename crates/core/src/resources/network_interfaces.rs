//! Network interfaces. Every instance has exactly one, its primary, made and
//! deleted with it; so an interface is a view of its instance, not a row of
//! its own. `ModifyNetworkInterfaceAttribute` changes the instance's groups,
//! which reach the data plane at once (network.rs).

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::filter::{self, Filter, Filterable, Page};
use crate::ids::{NetworkInterfaceId, ResourceKind, SecurityGroupId};
use crate::resources::instances::{AttributeChange, Instance};
use crate::service::{Ctx, Ec2};
use crate::store::TxExt;
use crate::tags::Tags;

/// An instance's primary interface.
pub struct NetworkInterface(pub Instance);

impl Filterable for NetworkInterface {
    const FILTERS: &'static [&'static str] = &[
        "network-interface-id", "attachment.instance-id", "attachment.attachment-id", "attachment.status",
        "vpc-id", "subnet-id", "availability-zone", "private-ip-address", "addresses.private-ip-address",
        "mac-address", "group-id", "group-name", "status", "association.public-ip", "owner-id", "interface-type",
        "source-dest-check",
    ];
    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        let i = &self.0;
        match name {
            "network-interface-id" => vec![Cow::Borrowed(i.eni_id.as_str())],
            "attachment.instance-id" => vec![Cow::Borrowed(i.id.as_str())],
            "attachment.attachment-id" => vec![Cow::Borrowed(i.eni_attachment_id.as_str())],
            "attachment.status" => vec![Cow::Borrowed("attached")],
            "vpc-id" => vec![Cow::Borrowed(i.vpc_id.as_str())],
            "subnet-id" => vec![Cow::Borrowed(i.subnet_id.as_str())],
            "availability-zone" => vec![Cow::Borrowed(i.availability_zone.as_str())],
            "private-ip-address" | "addresses.private-ip-address" => vec![Cow::Owned(i.private_ip.to_string())],
            "mac-address" => vec![Cow::Borrowed(i.mac.as_str())],
            "group-id" => i.security_groups.iter().map(|g| Cow::Borrowed(g.id.as_str())).collect(),
            "group-name" => i.security_groups.iter().map(|g| Cow::Borrowed(g.name.as_str())).collect(),
            "status" => vec![Cow::Borrowed("in-use")],
            "association.public-ip" => i.effective_public_ip().map(|ip| Cow::Owned(ip.to_string())).into_iter().collect(),
            "owner-id" => vec![Cow::Borrowed(i.owner.as_str())],
            "interface-type" => vec![Cow::Borrowed("interface")],
            "source-dest-check" => vec![Cow::Borrowed(if i.source_dest_check { "true" } else { "false" })],
            _ => vec![],
        }
    }
    fn tags(&self) -> Option<&Tags> {
        Some(&self.0.eni_tags)
    }
}

#[derive(Clone, Debug, Default)]
pub struct DescribeNetworkInterfaces {
    pub ids: Vec<NetworkInterfaceId>,
    pub filters: Vec<Filter>,
    pub page: Page,
}

/// `ModifyNetworkInterfaceAttribute`: exactly one of these.
#[derive(Clone, Debug, Default)]
pub struct ModifyNetworkInterface {
    pub id: Option<NetworkInterfaceId>,
    pub groups: Vec<SecurityGroupId>,
    pub source_dest_check: Option<bool>,
    pub description: Option<String>,
}

impl Ec2 {
    /// Interfaces of the caller's instances that still have them.
    fn interfaces(&self, ctx: &Ctx) -> Result<Vec<NetworkInterface>> {
        Ok(self
            .store
            .read()?
            .list_of::<Instance>(&ctx.account, &ctx.region)?
            .into_iter()
            .filter(|i| i.state.holds_resources())
            .map(NetworkInterface)
            .collect())
    }

    pub fn describe_network_interfaces(&self, ctx: &Ctx, req: DescribeNetworkInterfaces) -> Result<(Vec<NetworkInterface>, Option<String>)> {
        filter::check::<NetworkInterface>(&req.filters)?;
        req.page.validate(5, 1000)?;
        if req.page.max_results.is_some() && !req.ids.is_empty() {
            return Err(Error::InvalidParameterCombination(
                "The parameter networkInterfaceIdSet cannot be used with the parameter maxResults".into(),
            ));
        }
        self.ensure_scope(ctx)?;
        let all = self.interfaces(ctx)?;
        let missing: Vec<String> = req.ids.iter().filter(|id| !all.iter().any(|n| &n.0.eni_id == *id)).map(|id| id.to_string()).collect();
        if !missing.is_empty() {
            return Err(Error::NotFound { kind: ResourceKind::NetworkInterface, ids: missing });
        }
        let picked = all
            .into_iter()
            .filter(|n| req.ids.is_empty() || req.ids.contains(&n.0.eni_id))
            .filter(|n| filter::matches(n, &req.filters))
            .collect();
        req.page.apply(picked)
    }

    pub fn modify_network_interface_attribute(&self, ctx: &Ctx, req: ModifyNetworkInterface) -> Result<()> {
        let Some(id) = &req.id else { return Err(Error::MissingParameter("NetworkInterfaceId".into())) };
        let given = [!req.groups.is_empty(), req.source_dest_check.is_some(), req.description.is_some()];
        match given.iter().filter(|g| **g).count() {
            0 => return Err(Error::MissingParameter("one of SecurityGroupId, SourceDestCheck or Description".into())),
            1 => {}
            _ => return Err(Error::InvalidParameterCombination("Modify one attribute of a network interface at a time".into())),
        }
        let owner = self
            .interfaces(ctx)?
            .into_iter()
            .find(|n| &n.0.eni_id == id)
            .ok_or_else(|| Error::not_found(ResourceKind::NetworkInterface, id.as_str()))?;
        let change = if let Some(v) = req.source_dest_check {
            AttributeChange::SourceDestCheck(v)
        } else if req.description.is_some() {
            return Err(Error::Unsupported("Descriptions of network interfaces are not kept by Strato".into()));
        } else {
            AttributeChange::Groups(req.groups)
        };
        self.modify_instance_attribute(ctx, &owner.0.id, change)
    }
}
