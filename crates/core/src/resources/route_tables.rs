//! Route tables, as AWS makes them with each VPC (the main table with its
//! local route) and for the default VPC (plus 0.0.0.0/0 to the internet
//! gateway), and the actions on them. A subnet uses the table it is
//! associated with, else its VPC's main table. What reaches packets is one
//! question per subnet: does its table send 0.0.0.0/0 to an attached internet
//! gateway (network.rs)? Only such subnets' instances have working public
//! addresses.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::cidr::Ipv4Cidr;
use crate::error::{Error, Result};
use crate::filter::{self, Filter, Filterable, Page};
use crate::ids::{AccountId, InternetGatewayId, Region, ResourceKind, RouteTableAssociationId, RouteTableId, SubnetId, VpcId};
use crate::resources::internet_gateways::{attached_to, InternetGateway};
use crate::resources::vpcs::parse_block;
use crate::service::{Ctx, Ec2};
use crate::store::{ReadTx, Resource, TxExt, WriteTxExt};
use crate::tags::{self, TagSpecification, Tags};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouteTarget {
    Local,
    Gateway(InternetGatewayId),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub destination: Ipv4Cidr,
    pub target: RouteTarget,
    /// `CreateRouteTable` for routes the table was born with, `CreateRoute` otherwise.
    pub origin: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Association {
    pub id: RouteTableAssociationId,
    pub main: bool,
    pub subnet_id: Option<SubnetId>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RouteTable {
    pub id: RouteTableId,
    pub owner: AccountId,
    pub region: Region,
    pub vpc_id: VpcId,
    pub routes: Vec<Route>,
    pub associations: Vec<Association>,
    pub tags: Tags,
}

impl Resource for RouteTable {
    const KIND: ResourceKind = ResourceKind::RouteTable;
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

impl RouteTable {
    /// A VPC's main route table, with only the local route.
    pub fn main_for(owner: &AccountId, region: &Region, vpc_id: &VpcId, vpc_cidr: Ipv4Cidr) -> RouteTable {
        RouteTable {
            id: RouteTableId::generate(),
            owner: owner.clone(),
            region: region.clone(),
            vpc_id: vpc_id.clone(),
            routes: vec![Route { destination: vpc_cidr, target: RouteTarget::Local, origin: "CreateRouteTable".into() }],
            associations: vec![Association { id: RouteTableAssociationId::generate(), main: true, subnet_id: None }],
            tags: Tags::default(),
        }
    }

    pub fn is_main(&self) -> bool {
        self.associations.iter().any(|a| a.main)
    }
}

impl Route {
    /// `gatewayId` on the wire: `local` for the VPC's own block.
    pub fn gateway_id(&self) -> &str {
        match &self.target {
            RouteTarget::Local => "local",
            RouteTarget::Gateway(g) => g.as_str(),
        }
    }
}

/// A route table with what its routes lead to right now, for describing.
pub struct RouteTableView {
    pub table: RouteTable,
    /// Gateways attached to the table's VPC: routes to others are `blackhole`.
    pub attached: Vec<InternetGatewayId>,
}

impl RouteTableView {
    pub fn route_state(&self, r: &Route) -> &'static str {
        match &r.target {
            RouteTarget::Gateway(g) if !self.attached.contains(g) => "blackhole",
            _ => "active",
        }
    }
}

impl Filterable for RouteTable {
    const FILTERS: &'static [&'static str] = &[
        "association.route-table-association-id", "association.route-table-id", "association.subnet-id",
        "association.main", "owner-id", "route-table-id", "route.destination-cidr-block", "route.gateway-id",
        "route.origin", "vpc-id",
    ];
    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        match name {
            "association.route-table-association-id" => self.associations.iter().map(|a| Cow::Borrowed(a.id.as_str())).collect(),
            "association.route-table-id" => self.associations.iter().map(|_| Cow::Borrowed(self.id.as_str())).collect(),
            "association.subnet-id" => self.associations.iter().filter_map(|a| a.subnet_id.as_ref()).map(|s| Cow::Borrowed(s.as_str())).collect(),
            "association.main" => self.associations.iter().map(|a| Cow::Borrowed(if a.main { "true" } else { "false" })).collect(),
            "owner-id" => vec![Cow::Borrowed(self.owner.as_str())],
            "route-table-id" => vec![Cow::Borrowed(self.id.as_str())],
            "route.destination-cidr-block" => self.routes.iter().map(|r| Cow::Owned(r.destination.to_string())).collect(),
            "route.gateway-id" => self.routes.iter().map(|r| Cow::Borrowed(r.gateway_id())).collect(),
            "route.origin" => self.routes.iter().map(|r| Cow::Borrowed(r.origin.as_str())).collect(),
            "vpc-id" => vec![Cow::Borrowed(self.vpc_id.as_str())],
            _ => vec![],
        }
    }
    fn tags(&self) -> Option<&Tags> {
        Some(&self.tags)
    }
}

/// `CreateRoute` and `ReplaceRoute`.
#[derive(Clone, Debug, Default)]
pub struct RouteRequest {
    pub table: Option<RouteTableId>,
    pub destination: Option<String>,
    pub gateway_id: Option<InternetGatewayId>,
    /// A target of a kind Strato has no such resource for (NAT gateways,
    /// peering connections, …): the parameter's name.
    pub other_target: Option<&'static str>,
}

#[derive(Clone, Debug, Default)]
pub struct DescribeRouteTables {
    pub ids: Vec<RouteTableId>,
    pub filters: Vec<Filter>,
    pub page: Page,
}

impl Ec2 {
    fn load_table(&self, tx: &dyn ReadTx, ctx: &Ctx, id: &RouteTableId) -> Result<RouteTable> {
        tx.load_owned::<RouteTable>(id.as_str(), &ctx.account, &ctx.region)?
            .ok_or_else(|| Error::not_found(ResourceKind::RouteTable, id.as_str()))
    }

    /// With a `client_token`, a repeat of the same request returns the same
    /// table; the same token for another VPC is a mismatch.
    pub fn create_route_table(
        &self,
        ctx: &Ctx,
        vpc_id: Option<&VpcId>,
        tag_specs: &[TagSpecification],
        client_token: Option<&str>,
    ) -> Result<RouteTableView> {
        let Some(vpc_id) = vpc_id else { return Err(Error::MissingParameter("VpcId".into())) };
        let tags = tags::for_kind(tag_specs, ResourceKind::RouteTable, &[ResourceKind::RouteTable])?;
        let mut tx = self.begin(ctx)?;
        let vpc = self.load_vpc(tx.as_ref(), ctx, vpc_id)?;
        let token_key = client_token.map(|t| format!("idem/{}/{}/CreateRouteTable/{t}", ctx.account, ctx.region));
        if let Some(key) = &token_key {
            if let Some(earlier) = tx.meta_get(key)? {
                let table = tx
                    .load_owned::<RouteTable>(&earlier, &ctx.account, &ctx.region)?
                    .ok_or_else(|| Error::IdempotentParameterMismatch("The route table made with this client token is gone".into()))?;
                if &table.vpc_id != vpc_id {
                    return Err(Error::IdempotentParameterMismatch(
                        "The client token was used before with different parameters".into(),
                    ));
                }
                let attached = attached_to(tx.as_ref(), &ctx.account, &ctx.region, vpc_id)?;
                return Ok(RouteTableView { table, attached });
            }
        }
        let mut table = RouteTable::main_for(&ctx.account, &ctx.region, &vpc.id, vpc.cidr);
        table.associations.clear();
        table.tags = tags::from_list(&tags, table.id.as_str())?;
        tx.save(&table)?;
        if let Some(key) = &token_key {
            tx.meta_put(key, table.id.as_str())?;
        }
        let attached = attached_to(tx.as_ref(), &ctx.account, &ctx.region, vpc_id)?;
        tx.commit()?;
        Ok(RouteTableView { table, attached })
    }

    pub fn delete_route_table(&self, ctx: &Ctx, id: &RouteTableId) -> Result<()> {
        let mut tx = self.begin(ctx)?;
        let table = self.load_table(tx.as_ref(), ctx, id)?;
        if !table.associations.is_empty() {
            return Err(Error::DependencyViolation(format!("The routeTable '{id}' has dependencies and cannot be deleted.")));
        }
        tx.remove(&table)?;
        tx.commit()
    }

    /// `CreateRoute` (`replace` false) and `ReplaceRoute` (`replace` true).
    pub fn put_route(&self, ctx: &Ctx, req: RouteRequest, replace: bool) -> Result<()> {
        let Some(table_id) = &req.table else { return Err(Error::MissingParameter("RouteTableId".into())) };
        let Some(dest_text) = &req.destination else {
            return Err(Error::MissingParameter("DestinationCidrBlock (IPv6 destinations and prefix lists are not supported)".into()));
        };
        let destination = parse_block("destinationCidrBlock", dest_text)?;
        let gateway = match (&req.gateway_id, req.other_target) {
            (Some(g), None) => g.clone(),
            (None, Some(kind)) => {
                return Err(Error::Unsupported(format!(
                    "{kind} is not supported by Strato: routes lead from an IPv4 block to an internet gateway (GatewayId)"
                )))
            }
            (Some(_), Some(kind)) => {
                return Err(Error::Unsupported(format!(
                    "{kind} is not supported by Strato: routes lead from an IPv4 block to an internet gateway (GatewayId)"
                )))
            }
            (None, None) => {
                return Err(Error::MissingParameter(
                    "The request must contain exactly one of gatewayId, natGatewayId, networkInterfaceId, vpcPeeringConnectionId or instanceId".into(),
                ))
            }
        };
        let mut tx = self.begin(ctx)?;
        let mut table = self.load_table(tx.as_ref(), ctx, table_id)?;
        let igw = self.load_gateway(tx.as_ref(), ctx, &gateway)?;
        if igw.attached_vpc.as_ref() != Some(&table.vpc_id) {
            return Err(Error::InvalidParameterValue(format!(
                "route table {table_id} and network gateway {gateway} belong to different networks"
            )));
        }
        let slot = table.routes.iter().position(|r| r.destination == destination);
        match (slot, replace) {
            (Some(i), _) if table.routes[i].target == RouteTarget::Local => {
                return Err(Error::InvalidParameterValue(format!(
                    "The local route {destination} of route table {table_id} cannot be changed"
                )))
            }
            (Some(_), false) => {
                return Err(Error::RouteExists(format!("The route identified by {destination} already exists.")))
            }
            (Some(i), true) => table.routes[i].target = RouteTarget::Gateway(gateway),
            (None, false) => table.routes.push(Route { destination, target: RouteTarget::Gateway(gateway), origin: "CreateRoute".into() }),
            (None, true) => {
                return Err(Error::InvalidParameterValue(format!(
                    "There is no route defined for '{destination}' in the route table. Use CreateRoute instead."
                )))
            }
        }
        tx.save(&table)?;
        tx.commit()?;
        self.sync_network([&table.vpc_id]);
        Ok(())
    }

    pub fn delete_route(&self, ctx: &Ctx, table_id: &RouteTableId, destination: Option<&str>) -> Result<()> {
        let Some(dest_text) = destination else { return Err(Error::MissingParameter("DestinationCidrBlock".into())) };
        let destination = parse_block("destinationCidrBlock", dest_text)?;
        let mut tx = self.begin(ctx)?;
        let mut table = self.load_table(tx.as_ref(), ctx, table_id)?;
        let Some(i) = table.routes.iter().position(|r| r.destination == destination) else {
            return Err(Error::RouteNotFound(format!(
                "no route with destination-cidr-block {destination} in route table {table_id}"
            )));
        };
        if table.routes[i].target == RouteTarget::Local {
            return Err(Error::InvalidParameterValue(format!("cannot remove local route {destination} in route table {table_id}")));
        }
        table.routes.remove(i);
        tx.save(&table)?;
        tx.commit()?;
        self.sync_network([&table.vpc_id]);
        Ok(())
    }

    pub fn associate_route_table(&self, ctx: &Ctx, table_id: &RouteTableId, subnet_id: Option<&SubnetId>) -> Result<RouteTableAssociationId> {
        let Some(subnet_id) = subnet_id else {
            return Err(Error::MissingParameter("SubnetId (gateway associations are not supported)".into()));
        };
        let mut tx = self.begin(ctx)?;
        let mut table = self.load_table(tx.as_ref(), ctx, table_id)?;
        let subnet = self.load_subnet(tx.as_ref(), ctx, subnet_id)?;
        if subnet.vpc_id != table.vpc_id {
            return Err(Error::InvalidParameterValue(format!(
                "route table {table_id} and subnet {subnet_id} belong to different networks"
            )));
        }
        let taken = tx
            .list_of::<RouteTable>(&ctx.account, &ctx.region)?
            .into_iter()
            .any(|t| t.associations.iter().any(|a| a.subnet_id.as_ref() == Some(subnet_id)));
        if taken {
            return Err(Error::AlreadyAssociated(format!(
                "the specified association for route table {table_id} conflicts with an existing association"
            )));
        }
        let id = RouteTableAssociationId::generate();
        table.associations.push(Association { id: id.clone(), main: false, subnet_id: Some(subnet_id.clone()) });
        tx.save(&table)?;
        tx.commit()?;
        self.sync_network([&table.vpc_id]);
        Ok(id)
    }

    pub fn disassociate_route_table(&self, ctx: &Ctx, id: &RouteTableAssociationId) -> Result<()> {
        let mut tx = self.begin(ctx)?;
        let Some(mut table) =
            tx.list_of::<RouteTable>(&ctx.account, &ctx.region)?.into_iter().find(|t| t.associations.iter().any(|a| &a.id == id))
        else {
            return Err(Error::not_found(ResourceKind::RouteTableAssociation, id.as_str()));
        };
        if table.associations.iter().any(|a| &a.id == id && a.main) {
            return Err(Error::InvalidParameterValue(format!("cannot disassociate the main route table association {id}")));
        }
        table.associations.retain(|a| &a.id != id);
        tx.save(&table)?;
        tx.commit()?;
        self.sync_network([&table.vpc_id]);
        Ok(())
    }

    pub fn describe_route_tables(&self, ctx: &Ctx, req: DescribeRouteTables) -> Result<(Vec<RouteTableView>, Option<String>)> {
        filter::check::<RouteTable>(&req.filters)?;
        req.page.validate(5, 100)?;
        if req.page.max_results.is_some() && !req.ids.is_empty() {
            return Err(Error::InvalidParameterCombination(
                "The parameter routeTableIdSet cannot be used with the parameter maxResults".into(),
            ));
        }
        self.ensure_scope(ctx)?;
        let tx = self.store.read()?;
        let all = tx.list_of::<RouteTable>(&ctx.account, &ctx.region)?;
        let missing: Vec<String> = req.ids.iter().filter(|id| !all.iter().any(|t| &t.id == *id)).map(|id| id.to_string()).collect();
        if !missing.is_empty() {
            return Err(Error::NotFound { kind: ResourceKind::RouteTable, ids: missing });
        }
        let gateways = tx.list_of::<InternetGateway>(&ctx.account, &ctx.region)?;
        let picked: Vec<RouteTable> = all
            .into_iter()
            .filter(|t| req.ids.is_empty() || req.ids.contains(&t.id))
            .filter(|t| filter::matches(t, &req.filters))
            .collect();
        let (page, next) = req.page.apply(picked)?;
        let views = page
            .into_iter()
            .map(|table| {
                let attached = gateways.iter().filter(|g| g.attached_vpc.as_ref() == Some(&table.vpc_id)).map(|g| g.id.clone()).collect();
                RouteTableView { table, attached }
            })
            .collect();
        Ok((views, next))
    }
}
