//! VPCs, and the default network every account gets in every region.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::cidr::{CidrError, Ipv4Cidr};
use crate::error::{Error, Limit, Result};
use crate::filter::{self, Filter, Filterable, Page};
use crate::ids::{random_hex, AccountId, DhcpOptionsId, InternetGatewayId, Region, ResourceKind, SubnetId, VpcId};
use crate::regions;
use crate::resources::internet_gateways::{attached_to, InternetGateway};
use crate::resources::route_tables::{Route, RouteTable, RouteTarget};
use crate::resources::security_groups::SecurityGroup;
use crate::resources::subnets::Subnet;
use crate::service::{Ctx, Ec2};
use crate::store::{ReadTx, Resource, TxExt, WriteTx, WriteTxExt};
use crate::tags::{self, TagSpecification, Tags};
use crate::time::Timestamp;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Vpc {
    pub id: VpcId,
    pub owner: AccountId,
    pub region: Region,
    pub cidr: Ipv4Cidr,
    pub cidr_association_id: String,
    pub is_default: bool,
    pub tenancy: String,
    pub dhcp_options_id: DhcpOptionsId,
    pub created: Timestamp,
    pub tags: Tags,
}

impl Resource for Vpc {
    const KIND: ResourceKind = ResourceKind::Vpc;
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

impl Filterable for Vpc {
    const FILTERS: &'static [&'static str] = &[
        "cidr", "cidr-block-association.cidr-block", "cidr-block-association.association-id",
        "cidr-block-association.state", "dhcp-options-id", "is-default", "owner-id", "state", "vpc-id",
        "instance-tenancy",
    ];
    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        match name {
            "cidr" | "cidr-block-association.cidr-block" => vec![Cow::Owned(self.cidr.to_string())],
            "cidr-block-association.association-id" => vec![Cow::Borrowed(self.cidr_association_id.as_str())],
            "cidr-block-association.state" => vec![Cow::Borrowed("associated")],
            "dhcp-options-id" => vec![Cow::Borrowed(self.dhcp_options_id.as_str())],
            "is-default" => vec![Cow::Borrowed(if self.is_default { "true" } else { "false" })],
            "owner-id" => vec![Cow::Borrowed(self.owner.as_str())],
            "state" => vec![Cow::Borrowed("available")],
            "vpc-id" => vec![Cow::Borrowed(self.id.as_str())],
            "instance-tenancy" => vec![Cow::Borrowed(self.tenancy.as_str())],
            _ => vec![],
        }
    }
    fn tags(&self) -> Option<&Tags> {
        Some(&self.tags)
    }
}

#[derive(Clone, Debug, Default)]
pub struct CreateVpc {
    pub cidr_block: Option<String>,
    pub instance_tenancy: Option<String>,
    pub amazon_provided_ipv6: bool,
    pub tag_specs: Vec<TagSpecification>,
}

#[derive(Clone, Debug, Default)]
pub struct DescribeVpcs {
    pub vpc_ids: Vec<VpcId>,
    pub filters: Vec<Filter>,
    pub page: Page,
}

/// The default VPC's block and its per-zone /20 subnets, as AWS lays them out.
const DEFAULT_VPC_CIDR: &str = "172.31.0.0/16";

/// Parses a CIDR given for a VPC or subnet; `range` builds the error for a block
/// of the wrong size.
pub(crate) fn parse_block(param: &str, value: &str) -> Result<Ipv4Cidr> {
    value.parse::<Ipv4Cidr>().map_err(|e| match e {
        CidrError::Syntax => Error::invalid_value(param, value, "This is not a valid CIDR block."),
        CidrError::NotNetworkAddress => Error::invalid_value(
            param,
            value,
            "The address has host bits set; give the network address of the block.",
        ),
    })
}

/// Everything a new VPC comes with: itself, its main route table and its
/// default security group.
fn new_vpc(ctx: &Ctx, cidr: Ipv4Cidr, is_default: bool, tenancy: &str, now: Timestamp) -> (Vpc, RouteTable, SecurityGroup) {
    let vpc = Vpc {
        id: VpcId::generate(),
        owner: ctx.account.clone(),
        region: ctx.region.clone(),
        cidr,
        cidr_association_id: format!("vpc-cidr-assoc-{}", random_hex(17)),
        is_default,
        tenancy: tenancy.to_string(),
        dhcp_options_id: DhcpOptionsId::generate(),
        created: now,
        tags: Tags::default(),
    };
    let rtb = RouteTable::main_for(&ctx.account, &ctx.region, &vpc.id, cidr);
    let sg = SecurityGroup::default_for(&ctx.account, &ctx.region, &vpc.id);
    (vpc, rtb, sg)
}

impl Ec2 {
    /// Makes the default network of a scope inside `tx` if it was never made:
    /// default VPC, a /20 default subnet per zone, the main route table with a
    /// route to the internet gateway, the gateway itself, the default group.
    pub(crate) fn ensure_scope_in(&self, ctx: &Ctx, tx: &mut dyn WriteTx) -> Result<()> {
        let marker = Ec2::scope_marker(ctx);
        if tx.meta_get(&marker)?.is_some() {
            return Ok(());
        }
        let now = self.now();
        let cidr: Ipv4Cidr = DEFAULT_VPC_CIDR.parse().map_err(|_| Error::internal("default VPC CIDR"))?;
        let (vpc, mut rtb, sg) = new_vpc(ctx, cidr, true, "default", now);
        let igw = InternetGateway {
            id: InternetGatewayId::generate(),
            owner: ctx.account.clone(),
            region: ctx.region.clone(),
            attached_vpc: Some(vpc.id.clone()),
            tags: Tags::default(),
        };
        let anywhere: Ipv4Cidr = "0.0.0.0/0".parse().map_err(|_| Error::internal("0.0.0.0/0"))?;
        rtb.routes.push(Route { destination: anywhere, target: RouteTarget::Gateway(igw.id.clone()), origin: "CreateRoute".into() });
        for (i, zone) in regions::zones(ctx.region.as_str()).into_iter().enumerate() {
            let block = cidr
                .nth(i as u64 * 4096)
                .and_then(|a| Ipv4Cidr::new(a, 20).ok())
                .ok_or_else(|| Error::internal("default subnet layout"))?;
            let subnet = Subnet {
                id: SubnetId::generate(),
                owner: ctx.account.clone(),
                region: ctx.region.clone(),
                vpc_id: vpc.id.clone(),
                cidr: block,
                availability_zone: zone.name,
                availability_zone_id: zone.zone_id,
                default_for_az: true,
                map_public_ip_on_launch: true,
                hostname_type: "ip-name".into(),
                resource_name_dns_a_record: false,
                created: now,
                tags: Tags::default(),
            };
            tx.save(&subnet)?;
        }
        tx.save(&vpc)?;
        tx.save(&rtb)?;
        tx.save(&sg)?;
        tx.save(&igw)?;
        tx.meta_put(&marker, &now.0.to_string())?;
        Ok(())
    }

    pub(crate) fn default_vpc(&self, tx: &dyn ReadTx, ctx: &Ctx) -> Result<Option<Vpc>> {
        Ok(tx.list_of::<Vpc>(&ctx.account, &ctx.region)?.into_iter().find(|v| v.is_default))
    }

    pub(crate) fn load_vpc(&self, tx: &dyn ReadTx, ctx: &Ctx, id: &VpcId) -> Result<Vpc> {
        tx.load_owned::<Vpc>(id.as_str(), &ctx.account, &ctx.region)?
            .ok_or_else(|| Error::not_found(ResourceKind::Vpc, id.as_str()))
    }

    pub fn create_vpc(&self, ctx: &Ctx, req: CreateVpc) -> Result<Vpc> {
        let Some(cidr_text) = req.cidr_block.as_deref() else {
            return Err(Error::MissingParameter("CidrBlock".into()));
        };
        let cidr = parse_block("cidrBlock", cidr_text)?;
        if !(16..=28).contains(&cidr.prefix()) {
            return Err(Error::InvalidVpcRange(cidr_text.to_string()));
        }
        if req.amazon_provided_ipv6 {
            return Err(Error::Unsupported("IPv6 CIDR blocks are not supported by Strato yet".into()));
        }
        let tenancy = req.instance_tenancy.clone().unwrap_or_else(|| "default".into());
        if !["default", "dedicated"].contains(&tenancy.as_str()) {
            return Err(Error::invalid_value("instanceTenancy", &tenancy, "Valid values are default and dedicated."));
        }
        let tags = tags::for_kind(&req.tag_specs, ResourceKind::Vpc, &[ResourceKind::Vpc])?;
        let mut tx = self.begin(ctx)?;
        if tx.list(ResourceKind::Vpc, ctx.account.as_str(), ctx.region.as_str())?.len() >= self.config.limits.vpcs_per_region {
            return Err(Error::LimitExceeded { limit: Limit::Vpcs, message: "The maximum number of VPCs has been reached.".into() });
        }
        let (mut vpc, rtb, sg) = new_vpc(ctx, cidr, false, &tenancy, self.now());
        vpc.tags = tags::from_list(&tags, vpc.id.as_str())?;
        tx.save(&vpc)?;
        tx.save(&rtb)?;
        tx.save(&sg)?;
        tx.commit()?;
        Ok(vpc)
    }

    pub fn delete_vpc(&self, ctx: &Ctx, id: &VpcId) -> Result<()> {
        let mut tx = self.begin(ctx)?;
        let vpc = self.load_vpc(tx.as_ref(), ctx, id)?;
        let blocked = || Error::DependencyViolation(format!("The vpc '{id}' has dependencies and cannot be deleted."));
        if tx.list_of::<Subnet>(&ctx.account, &ctx.region)?.iter().any(|s| &s.vpc_id == id) {
            return Err(blocked());
        }
        if !attached_to(tx.as_ref(), &ctx.account, &ctx.region, id)?.is_empty() {
            return Err(blocked());
        }
        let groups: Vec<SecurityGroup> =
            tx.list_of::<SecurityGroup>(&ctx.account, &ctx.region)?.into_iter().filter(|g| &g.vpc_id == id).collect();
        if groups.iter().any(|g| !g.is_default()) {
            return Err(blocked());
        }
        let tables: Vec<RouteTable> =
            tx.list_of::<RouteTable>(&ctx.account, &ctx.region)?.into_iter().filter(|t| &t.vpc_id == id).collect();
        if tables.iter().any(|t| !t.is_main()) {
            return Err(blocked());
        }
        for g in &groups {
            tx.remove(g)?;
        }
        for t in &tables {
            tx.remove(t)?;
        }
        tx.remove(&vpc)?;
        tx.commit()?;
        Ok(())
    }

    pub fn describe_vpcs(&self, ctx: &Ctx, req: DescribeVpcs) -> Result<(Vec<Vpc>, Option<String>)> {
        filter::check::<Vpc>(&req.filters)?;
        req.page.validate(5, 1000)?;
        self.ensure_scope(ctx)?;
        let tx = self.store.read()?;
        let all = tx.list_of::<Vpc>(&ctx.account, &ctx.region)?;
        let missing: Vec<String> =
            req.vpc_ids.iter().filter(|id| !all.iter().any(|v| &v.id == *id)).map(|id| id.to_string()).collect();
        if !missing.is_empty() {
            return Err(Error::NotFound { kind: ResourceKind::Vpc, ids: missing });
        }
        let picked = all
            .into_iter()
            .filter(|v| req.vpc_ids.is_empty() || req.vpc_ids.contains(&v.id))
            .filter(|v| filter::matches(v, &req.filters))
            .collect();
        req.page.apply(picked)
    }
}
