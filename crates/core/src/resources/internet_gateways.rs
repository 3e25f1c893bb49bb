//! Internet gateways. The default VPC gets one, attached, as on AWS; the
//! gateway actions come with the networking work.

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, InternetGatewayId, Region, ResourceKind, VpcId};
use crate::store::Resource;
use crate::tags::Tags;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InternetGateway {
    pub id: InternetGatewayId,
    pub owner: AccountId,
    pub region: Region,
    pub attached_vpc: Option<VpcId>,
    pub tags: Tags,
}

impl Resource for InternetGateway {
    const KIND: ResourceKind = ResourceKind::InternetGateway;
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
