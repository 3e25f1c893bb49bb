//! Route tables. Made here as AWS makes them with each VPC (the main table
//! with its local route) and for the default VPC (plus 0.0.0.0/0 to the
//! internet gateway). The route-table actions and the packets they steer come
//! with the networking work; the model is complete already.

use serde::{Deserialize, Serialize};

use crate::cidr::Ipv4Cidr;
use crate::ids::{AccountId, InternetGatewayId, Region, ResourceKind, RouteTableAssociationId, RouteTableId, SubnetId, VpcId};
use crate::store::Resource;
use crate::tags::Tags;

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
