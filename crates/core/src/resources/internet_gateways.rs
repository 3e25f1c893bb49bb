//! Internet gateways. The default VPC gets one, attached, as on AWS. A
//! gateway is what lets a VPC's instances be reached at, and leave with, their
//! public addresses (with a route table sending 0.0.0.0/0 to it); see
//! network.rs for how that becomes packets.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::filter::{self, Filter, Filterable, Page};
use crate::ids::{AccountId, InternetGatewayId, Region, ResourceKind, VpcId};
use crate::resources::instances::Instance;
use crate::service::{Ctx, Ec2};
use crate::store::{ReadTx, Resource, TxExt, WriteTxExt};
use crate::tags::{self, TagSpecification, Tags};

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

impl Filterable for InternetGateway {
    const FILTERS: &'static [&'static str] = &["attachment.state", "attachment.vpc-id", "internet-gateway-id", "owner-id"];
    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        match name {
            "attachment.state" => self.attached_vpc.iter().map(|_| Cow::Borrowed("available")).collect(),
            "attachment.vpc-id" => self.attached_vpc.iter().map(|v| Cow::Borrowed(v.as_str())).collect(),
            "internet-gateway-id" => vec![Cow::Borrowed(self.id.as_str())],
            "owner-id" => vec![Cow::Borrowed(self.owner.as_str())],
            _ => vec![],
        }
    }
    fn tags(&self) -> Option<&Tags> {
        Some(&self.tags)
    }
}

/// The internet gateways attached to a VPC (at most one, as on AWS).
pub(crate) fn attached_to(tx: &dyn ReadTx, owner: &AccountId, region: &Region, vpc: &VpcId) -> Result<Vec<InternetGatewayId>> {
    Ok(tx
        .list_of::<InternetGateway>(owner, region)?
        .into_iter()
        .filter(|g| g.attached_vpc.as_ref() == Some(vpc))
        .map(|g| g.id)
        .collect())
}

#[derive(Clone, Debug, Default)]
pub struct DescribeInternetGateways {
    pub ids: Vec<InternetGatewayId>,
    pub filters: Vec<Filter>,
    pub page: Page,
}

impl Ec2 {
    pub(crate) fn load_gateway(&self, tx: &dyn ReadTx, ctx: &Ctx, id: &InternetGatewayId) -> Result<InternetGateway> {
        tx.load_owned::<InternetGateway>(id.as_str(), &ctx.account, &ctx.region)?
            .ok_or_else(|| Error::not_found(ResourceKind::InternetGateway, id.as_str()))
    }

    pub fn create_internet_gateway(&self, ctx: &Ctx, tag_specs: &[TagSpecification]) -> Result<InternetGateway> {
        let tags = tags::for_kind(tag_specs, ResourceKind::InternetGateway, &[ResourceKind::InternetGateway])?;
        let mut tx = self.begin(ctx)?;
        let id = InternetGatewayId::generate();
        let igw = InternetGateway {
            tags: tags::from_list(&tags, id.as_str())?,
            id,
            owner: ctx.account.clone(),
            region: ctx.region.clone(),
            attached_vpc: None,
        };
        tx.save(&igw)?;
        tx.commit()?;
        Ok(igw)
    }

    pub fn attach_internet_gateway(&self, ctx: &Ctx, id: &InternetGatewayId, vpc_id: &VpcId) -> Result<()> {
        let mut tx = self.begin(ctx)?;
        let mut igw = self.load_gateway(tx.as_ref(), ctx, id)?;
        self.load_vpc(tx.as_ref(), ctx, vpc_id)?;
        if let Some(v) = &igw.attached_vpc {
            return Err(Error::AlreadyAssociated(format!("resource {id} is already attached to network {v}")));
        }
        if !attached_to(tx.as_ref(), &ctx.account, &ctx.region, vpc_id)?.is_empty() {
            return Err(Error::AlreadyAssociated(format!("Network {vpc_id} already has an internet gateway attached")));
        }
        igw.attached_vpc = Some(vpc_id.clone());
        tx.save(&igw)?;
        tx.commit()?;
        // Routes that named this gateway while it was detached now lead out.
        self.sync_network([vpc_id]);
        Ok(())
    }

    pub fn detach_internet_gateway(&self, ctx: &Ctx, id: &InternetGatewayId, vpc_id: &VpcId) -> Result<()> {
        let mut tx = self.begin(ctx)?;
        let mut igw = self.load_gateway(tx.as_ref(), ctx, id)?;
        self.load_vpc(tx.as_ref(), ctx, vpc_id)?;
        if igw.attached_vpc.as_ref() != Some(vpc_id) {
            return Err(Error::GatewayNotAttached(format!("resource {id} is not attached to network {vpc_id}")));
        }
        // As on AWS: public addresses in use keep the gateway attached.
        let mapped = tx
            .list_of::<Instance>(&ctx.account, &ctx.region)?
            .iter()
            .any(|i| &i.vpc_id == vpc_id && i.state.holds_resources() && i.effective_public_ip().is_some());
        if mapped {
            return Err(Error::DependencyViolation(format!(
                "Network {vpc_id} has some mapped public address(es). Please unmap those public address(es) before detaching the gateway."
            )));
        }
        igw.attached_vpc = None;
        tx.save(&igw)?;
        tx.commit()?;
        self.sync_network([vpc_id]);
        Ok(())
    }

    pub fn delete_internet_gateway(&self, ctx: &Ctx, id: &InternetGatewayId) -> Result<()> {
        let mut tx = self.begin(ctx)?;
        let igw = self.load_gateway(tx.as_ref(), ctx, id)?;
        if igw.attached_vpc.is_some() {
            return Err(Error::DependencyViolation(format!("The internetGateway '{id}' has dependencies and cannot be deleted.")));
        }
        tx.remove(&igw)?;
        tx.commit()
    }

    pub fn describe_internet_gateways(&self, ctx: &Ctx, req: DescribeInternetGateways) -> Result<(Vec<InternetGateway>, Option<String>)> {
        filter::check::<InternetGateway>(&req.filters)?;
        req.page.validate(5, 1000)?;
        if req.page.max_results.is_some() && !req.ids.is_empty() {
            return Err(Error::InvalidParameterCombination(
                "The parameter internetGatewayIdSet cannot be used with the parameter maxResults".into(),
            ));
        }
        self.ensure_scope(ctx)?;
        let all = self.store.read()?.list_of::<InternetGateway>(&ctx.account, &ctx.region)?;
        let missing: Vec<String> = req.ids.iter().filter(|id| !all.iter().any(|g| &g.id == *id)).map(|id| id.to_string()).collect();
        if !missing.is_empty() {
            return Err(Error::NotFound { kind: ResourceKind::InternetGateway, ids: missing });
        }
        let picked = all
            .into_iter()
            .filter(|g| req.ids.is_empty() || req.ids.contains(&g.id))
            .filter(|g| filter::matches(g, &req.filters))
            .collect();
        req.page.apply(picked)
    }
}
