//! Subnets: a block of a VPC in one availability zone, and the private
//! addresses instances get from it.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::cidr::Ipv4Cidr;
use crate::error::{Error, Limit, Result};
use crate::filter::{self, Filter, Filterable, Page};
use crate::ids::{AccountId, Region, ResourceKind, SubnetId, VpcId};
use crate::regions;
use crate::resources::instances::Instance;
use crate::resources::vpcs::parse_block;
use crate::service::{Ctx, Ec2};
use crate::store::{ReadTx, Resource, TxExt, WriteTx, WriteTxExt};
use crate::tags::{self, TagSpecification, Tags};
use crate::time::Timestamp;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Subnet {
    pub id: SubnetId,
    pub owner: AccountId,
    pub region: Region,
    pub vpc_id: VpcId,
    pub cidr: Ipv4Cidr,
    pub availability_zone: String,
    pub availability_zone_id: String,
    pub default_for_az: bool,
    pub map_public_ip_on_launch: bool,
    /// `ip-name` or `resource-name` (`PrivateDnsHostnameTypeOnLaunch`).
    pub hostname_type: String,
    pub resource_name_dns_a_record: bool,
    pub created: Timestamp,
    pub tags: Tags,
}

impl Resource for Subnet {
    const KIND: ResourceKind = ResourceKind::Subnet;
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

impl Subnet {
    pub fn arn(&self) -> String {
        format!("arn:aws:ec2:{}:{}:subnet/{}", self.region, self.owner, self.id)
    }

    /// The subnet's router: the first address after the network address.
    pub fn gateway(&self) -> Ipv4Addr {
        self.cidr.nth(1).unwrap_or(Ipv4Addr::UNSPECIFIED)
    }
}

/// A subnet as `DescribeSubnets` shows it, with its free address count.
#[derive(Clone, Debug)]
pub struct SubnetView {
    pub subnet: Subnet,
    pub available_ips: u64,
}

impl Filterable for SubnetView {
    const FILTERS: &'static [&'static str] = &[
        "availability-zone", "availability-zone-id", "available-ip-address-count", "cidr-block", "cidr",
        "cidrBlock", "default-for-az", "defaultForAz", "map-public-ip-on-launch", "owner-id", "state",
        "subnet-arn", "subnet-id", "vpc-id",
    ];
    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        let s = &self.subnet;
        match name {
            "availability-zone" => vec![Cow::Borrowed(s.availability_zone.as_str())],
            "availability-zone-id" => vec![Cow::Borrowed(s.availability_zone_id.as_str())],
            "available-ip-address-count" => vec![Cow::Owned(self.available_ips.to_string())],
            "cidr-block" | "cidr" | "cidrBlock" => vec![Cow::Owned(s.cidr.to_string())],
            "default-for-az" | "defaultForAz" => vec![Cow::Borrowed(if s.default_for_az { "true" } else { "false" })],
            "map-public-ip-on-launch" => vec![Cow::Borrowed(if s.map_public_ip_on_launch { "true" } else { "false" })],
            "owner-id" => vec![Cow::Borrowed(s.owner.as_str())],
            "state" => vec![Cow::Borrowed("available")],
            "subnet-arn" => vec![Cow::Owned(s.arn())],
            "subnet-id" => vec![Cow::Borrowed(s.id.as_str())],
            "vpc-id" => vec![Cow::Borrowed(s.vpc_id.as_str())],
            _ => vec![],
        }
    }
    fn tags(&self) -> Option<&Tags> {
        Some(&self.subnet.tags)
    }
}

#[derive(Clone, Debug, Default)]
pub struct CreateSubnet {
    pub vpc_id: Option<VpcId>,
    pub cidr_block: Option<String>,
    pub availability_zone: Option<String>,
    pub availability_zone_id: Option<String>,
    pub tag_specs: Vec<TagSpecification>,
}

#[derive(Clone, Debug, Default)]
pub struct DescribeSubnets {
    pub subnet_ids: Vec<SubnetId>,
    pub filters: Vec<Filter>,
    pub page: Page,
}

/// One attribute change of `ModifySubnetAttribute`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubnetAttribute {
    MapPublicIpOnLaunch(bool),
    AssignIpv6AddressOnCreation(bool),
    EnableDns64(bool),
    PrivateDnsHostnameTypeOnLaunch(String),
    EnableResourceNameDnsARecordOnLaunch(bool),
    EnableResourceNameDnsAaaaRecordOnLaunch(bool),
}

// The private addresses in use are indexed in the store's meta space, so that
// a launch costs the same with ten instances in a subnet as with a thousand:
//   ip/<subnet>/<address>  -> the instance holding it
//   ipcount/<subnet>       -> how many are held
// `Ec2::save_instance` keeps them in step with every instance change. Where
// the next search for a free address starts is kept in memory (`Ec2::cursor`).

pub(crate) fn ip_key(subnet: &SubnetId, ip: Ipv4Addr) -> String {
    format!("ip/{subnet}/{ip}")
}

fn count_key(subnet: &SubnetId) -> String {
    format!("ipcount/{subnet}")
}

pub(crate) fn used_count(tx: &dyn ReadTx, subnet: &SubnetId) -> Result<u64> {
    Ok(tx.meta_get(&count_key(subnet))?.and_then(|v| v.parse().ok()).unwrap_or(0))
}

pub(crate) fn adjust_count(tx: &mut dyn WriteTx, subnet: &SubnetId, delta: i64) -> Result<()> {
    let n = used_count(tx, subnet)? as i64 + delta;
    tx.meta_put(&count_key(subnet), &n.max(0).to_string())
}

impl Ec2 {
    /// The next free usable address of a subnet, searching from where the last
    /// search ended and wrapping once; `None` if the subnet is full.
    pub(crate) fn next_free(&self, tx: &mut dyn WriteTx, subnet: &Subnet) -> Result<Option<Ipv4Addr>> {
        let usable = subnet.cidr.usable();
        if usable == 0 {
            return Ok(None);
        }
        let start = self.cursor(subnet.id.as_str()) % usable;
        for step in 0..usable {
            let k = (start + step) % usable;
            let Some(ip) = subnet.cidr.nth(4 + k) else { continue };
            if tx.meta_get(&ip_key(&subnet.id, ip))?.is_none() {
                self.set_cursor(subnet.id.as_str(), (k + 1) % usable);
                return Ok(Some(ip));
            }
        }
        Ok(None)
    }
}

impl Ec2 {
    pub(crate) fn load_subnet(&self, tx: &dyn ReadTx, ctx: &Ctx, id: &SubnetId) -> Result<Subnet> {
        tx.load_owned::<Subnet>(id.as_str(), &ctx.account, &ctx.region)?
            .ok_or_else(|| Error::not_found(ResourceKind::Subnet, id.as_str()))
    }

    pub fn create_subnet(&self, ctx: &Ctx, req: CreateSubnet) -> Result<SubnetView> {
        let Some(vpc_id) = req.vpc_id.clone() else {
            return Err(Error::MissingParameter("VpcId".into()));
        };
        let Some(cidr_text) = req.cidr_block.as_deref() else {
            return Err(Error::MissingParameter("CidrBlock".into()));
        };
        let cidr = parse_block("cidrBlock", cidr_text)?;
        if req.availability_zone.is_some() && req.availability_zone_id.is_some() {
            return Err(Error::InvalidParameterCombination(
                "Only one of AvailabilityZone or AvailabilityZoneId may be given".into(),
            ));
        }
        let zones = regions::zones(ctx.region.as_str());
        let zone_list = zones.iter().map(|z| z.name.as_str()).collect::<Vec<_>>().join(", ");
        let tags = tags::for_kind(&req.tag_specs, ResourceKind::Subnet, &[ResourceKind::Subnet])?;
        let mut tx = self.begin(ctx)?;
        let vpc = self.load_vpc(tx.as_ref(), ctx, &vpc_id)?;
        if !(16..=28).contains(&cidr.prefix()) || !vpc.cidr.contains_block(cidr) {
            return Err(Error::InvalidSubnetRange(cidr_text.to_string()));
        }
        let siblings: Vec<Subnet> =
            tx.list_of::<Subnet>(&ctx.account, &ctx.region)?.into_iter().filter(|s| s.vpc_id == vpc_id).collect();
        if siblings.iter().any(|s| s.cidr.overlaps(cidr)) {
            return Err(Error::SubnetConflict(cidr_text.to_string()));
        }
        if siblings.len() >= self.config.limits.subnets_per_vpc {
            return Err(Error::LimitExceeded { limit: Limit::Subnets, message: "The maximum number of subnets has been reached.".into() });
        }
        let zone = match (&req.availability_zone, &req.availability_zone_id) {
            (Some(name), _) => zones.iter().find(|z| &z.name == name).cloned().ok_or_else(|| {
                Error::invalid_value(
                    "availabilityZone",
                    name,
                    &format!("Subnets can currently only be created in the following availability zones: {zone_list}."),
                )
            })?,
            (None, Some(zid)) => zones.iter().find(|z| &z.zone_id == zid).cloned().ok_or_else(|| {
                Error::invalid_value("availabilityZoneId", zid, "No such availability zone id in this region.")
            })?,
            // Like AWS, spread unplaced subnets over the zones.
            (None, None) => zones
                .iter()
                .min_by_key(|z| siblings.iter().filter(|s| s.availability_zone == z.name).count())
                .cloned()
                .ok_or_else(|| Error::internal("region without zones"))?,
        };
        let mut subnet = Subnet {
            id: SubnetId::generate(),
            owner: ctx.account.clone(),
            region: ctx.region.clone(),
            vpc_id,
            cidr,
            availability_zone: zone.name,
            availability_zone_id: zone.zone_id,
            default_for_az: false,
            map_public_ip_on_launch: false,
            hostname_type: "ip-name".into(),
            resource_name_dns_a_record: false,
            created: self.now(),
            tags: Tags::default(),
        };
        subnet.tags = tags::from_list(&tags, subnet.id.as_str())?;
        tx.save(&subnet)?;
        tx.commit()?;
        Ok(SubnetView { available_ips: cidr.usable(), subnet })
    }

    pub fn delete_subnet(&self, ctx: &Ctx, id: &SubnetId) -> Result<()> {
        let mut tx = self.begin(ctx)?;
        let subnet = self.load_subnet(tx.as_ref(), ctx, id)?;
        let instances = tx.list_of::<Instance>(&ctx.account, &ctx.region)?;
        if instances.iter().any(|i| &i.subnet_id == id && i.state.holds_resources()) {
            return Err(Error::DependencyViolation(format!(
                "The subnet '{id}' has dependencies and cannot be deleted."
            )));
        }
        tx.remove(&subnet)?;
        tx.commit()?;
        Ok(())
    }

    pub fn describe_subnets(&self, ctx: &Ctx, req: DescribeSubnets) -> Result<(Vec<SubnetView>, Option<String>)> {
        filter::check::<SubnetView>(&req.filters)?;
        req.page.validate(5, 1000)?;
        self.ensure_scope(ctx)?;
        let tx = self.store.read()?;
        let all = tx.list_of::<Subnet>(&ctx.account, &ctx.region)?;
        let missing: Vec<String> =
            req.subnet_ids.iter().filter(|id| !all.iter().any(|s| &s.id == *id)).map(|id| id.to_string()).collect();
        if !missing.is_empty() {
            return Err(Error::NotFound { kind: ResourceKind::Subnet, ids: missing });
        }
        let mut picked = Vec::new();
        for s in all.into_iter().filter(|s| req.subnet_ids.is_empty() || req.subnet_ids.contains(&s.id)) {
            let used = used_count(tx.as_ref(), &s.id)?;
            picked.push(SubnetView { available_ips: s.cidr.usable().saturating_sub(used), subnet: s });
        }
        let picked = picked
            .into_iter()
            .filter(|v| filter::matches(v, &req.filters))
            .collect();
        req.page.apply(picked)
    }

    pub fn modify_subnet_attribute(&self, ctx: &Ctx, id: &SubnetId, attr: SubnetAttribute) -> Result<()> {
        let mut tx = self.begin(ctx)?;
        let mut subnet = self.load_subnet(tx.as_ref(), ctx, id)?;
        match attr {
            SubnetAttribute::MapPublicIpOnLaunch(v) => subnet.map_public_ip_on_launch = v,
            SubnetAttribute::AssignIpv6AddressOnCreation(true) | SubnetAttribute::EnableDns64(true)
            | SubnetAttribute::EnableResourceNameDnsAaaaRecordOnLaunch(true) => {
                return Err(Error::InvalidParameterValue(format!(
                    "The subnet ({id}) has no IPv6 CIDR block associated with it, so IPv6 attributes cannot be turned on."
                )));
            }
            SubnetAttribute::AssignIpv6AddressOnCreation(false) | SubnetAttribute::EnableDns64(false)
            | SubnetAttribute::EnableResourceNameDnsAaaaRecordOnLaunch(false) => {}
            SubnetAttribute::PrivateDnsHostnameTypeOnLaunch(t) => {
                if t != "ip-name" && t != "resource-name" {
                    return Err(Error::invalid_value("PrivateDnsHostnameTypeOnLaunch", &t, "Valid values are ip-name and resource-name."));
                }
                subnet.hostname_type = t;
            }
            SubnetAttribute::EnableResourceNameDnsARecordOnLaunch(v) => subnet.resource_name_dns_a_record = v,
        }
        tx.save(&subnet)?;
        tx.commit()?;
        Ok(())
    }
}
