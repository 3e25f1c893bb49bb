//! Elastic IP addresses, and the one global pool of public addresses that
//! they and the auto-assigned public IPs of instances are drawn from.
//!
//! The pool is global (not per account or region) because a public address
//! must be unique wherever it is routed. Who holds an address is kept in the
//! store's meta space under `pubip/<address>`.

use std::borrow::Cow;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Limit, Result};
use crate::filter::{self, Filter, Filterable};
use crate::ids::{AccountId, AllocationId, AssociationId, InstanceId, NetworkInterfaceId, Region, ResourceKind};
use crate::lifecycle::InstanceState;
use crate::resources::instances::{EipLink, Instance};
use crate::resources::internet_gateways::attached_to;
use crate::service::{Ctx, Ec2};
use crate::store::{ReadTx, Resource, TxExt, WriteTx, WriteTxExt};
use crate::tags::{self, TagSpecification, Tags};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressAssociation {
    pub id: AssociationId,
    pub instance_id: InstanceId,
    pub network_interface_id: NetworkInterfaceId,
    pub private_ip: Ipv4Addr,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Address {
    pub id: AllocationId,
    pub owner: AccountId,
    pub region: Region,
    pub public_ip: Ipv4Addr,
    pub association: Option<AddressAssociation>,
    pub tags: Tags,
}

impl Resource for Address {
    const KIND: ResourceKind = ResourceKind::ElasticIp;
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

impl Filterable for Address {
    const FILTERS: &'static [&'static str] = &[
        "allocation-id", "association-id", "domain", "instance-id", "network-border-group", "network-interface-id",
        "network-interface-owner-id", "private-ip-address", "public-ip", "public-ipv4-pool",
    ];
    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        let a = self.association.as_ref();
        match name {
            "allocation-id" => vec![Cow::Borrowed(self.id.as_str())],
            "association-id" => a.map(|a| vec![Cow::Borrowed(a.id.as_str())]).unwrap_or_default(),
            "domain" => vec![Cow::Borrowed("vpc")],
            "instance-id" => a.map(|a| vec![Cow::Borrowed(a.instance_id.as_str())]).unwrap_or_default(),
            "network-border-group" => vec![Cow::Borrowed(self.region.as_str())],
            "network-interface-id" => a.map(|a| vec![Cow::Borrowed(a.network_interface_id.as_str())]).unwrap_or_default(),
            "network-interface-owner-id" => a.map(|_| vec![Cow::Borrowed(self.owner.as_str())]).unwrap_or_default(),
            "private-ip-address" => a.map(|a| vec![Cow::Owned(a.private_ip.to_string())]).unwrap_or_default(),
            "public-ip" => vec![Cow::Owned(self.public_ip.to_string())],
            "public-ipv4-pool" => vec![Cow::Borrowed("amazon")],
            _ => vec![],
        }
    }
    fn tags(&self) -> Option<&Tags> {
        Some(&self.tags)
    }
}

#[derive(Clone, Debug, Default)]
pub struct AllocateAddress {
    pub domain: Option<String>,
    pub address: Option<String>,
    pub public_ipv4_pool: Option<String>,
    pub network_border_group: Option<String>,
    pub tag_specs: Vec<TagSpecification>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressRef {
    Allocation(AllocationId),
    PublicIp(String),
}

#[derive(Clone, Debug)]
pub struct AssociateAddress {
    pub address: Option<AddressRef>,
    pub instance_id: Option<InstanceId>,
    pub network_interface_id: Option<NetworkInterfaceId>,
    pub private_ip: Option<String>,
    pub allow_reassociation: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssociationRef {
    Association(AssociationId),
    PublicIp(String),
}

#[derive(Clone, Debug, Default)]
pub struct DescribeAddresses {
    pub public_ips: Vec<String>,
    pub allocation_ids: Vec<AllocationId>,
    pub filters: Vec<Filter>,
}

const PUBLIC_CURSOR: &str = "pubip-next";

fn pool_key(ip: Ipv4Addr) -> String {
    format!("pubip/{ip}")
}

impl Ec2 {
    /// Takes a free address of the public pool for `holder`: the next one
    /// after the last taken, wrapping round, so a launch does not scan the pool.
    pub(crate) fn allocate_public_ip(&self, tx: &mut dyn WriteTx, holder: &str) -> Result<Ipv4Addr> {
        let pool = self.config.public_pool;
        // The network and broadcast addresses of the pool are never handed out.
        let usable = pool.size().saturating_sub(2).max(1);
        let start = self.cursor(PUBLIC_CURSOR) % usable;
        for step in 0..usable {
            let k = (start + step) % usable;
            let Some(ip) = pool.nth(1 + k) else { continue };
            if tx.meta_get(&pool_key(ip))?.is_none() {
                tx.meta_put(&pool_key(ip), holder)?;
                self.set_cursor(PUBLIC_CURSOR, (k + 1) % usable);
                return Ok(ip);
            }
        }
        Err(Error::InsufficientFreeAddresses("The public address pool is exhausted.".into()))
    }

    pub(crate) fn release_public_ip(&self, tx: &mut dyn WriteTx, ip: Ipv4Addr) -> Result<()> {
        tx.meta_delete(&pool_key(ip))
    }

    fn find_address(&self, tx: &dyn ReadTx, ctx: &Ctx, r: &AddressRef) -> Result<Address> {
        match r {
            AddressRef::Allocation(id) => tx
                .load_owned::<Address>(id.as_str(), &ctx.account, &ctx.region)?
                .ok_or_else(|| Error::not_found(ResourceKind::ElasticIp, id.as_str())),
            AddressRef::PublicIp(ip) => tx
                .list_of::<Address>(&ctx.account, &ctx.region)?
                .into_iter()
                .find(|a| a.public_ip.to_string() == *ip)
                .ok_or_else(|| Error::AddressNotFound(ip.clone())),
        }
    }

    pub fn allocate_address(&self, ctx: &Ctx, req: AllocateAddress) -> Result<Address> {
        if let Some(d) = &req.domain {
            if d != "vpc" && d != "standard" {
                return Err(Error::invalid_value("domain", d, "Valid values are vpc and standard."));
            }
        }
        if let Some(p) = &req.public_ipv4_pool {
            if p != "amazon" {
                return Err(Error::InvalidParameterValue(format!("The public IPv4 pool '{p}' does not exist; only 'amazon' is offered.")));
            }
        }
        if let Some(g) = &req.network_border_group {
            if g != ctx.region.as_str() {
                return Err(Error::invalid_value("NetworkBorderGroup", g, &format!("The network border group of this region is {}.", ctx.region)));
            }
        }
        let wanted = match &req.address {
            Some(s) => Some(Ipv4Addr::from_str(s).map_err(|_| Error::invalid_value("Address", s, "This is not a valid IPv4 address."))?),
            None => None,
        };
        let tag_list = tags::for_kind(&req.tag_specs, ResourceKind::ElasticIp, &[ResourceKind::ElasticIp])?;
        let mut tx = self.begin(ctx)?;
        if tx.list(ResourceKind::ElasticIp, ctx.account.as_str(), ctx.region.as_str())?.len() >= self.config.limits.addresses_per_region {
            return Err(Error::LimitExceeded { limit: Limit::Addresses, message: "The maximum number of addresses has been reached.".into() });
        }
        let id = AllocationId::generate();
        let ip = match wanted {
            Some(ip) => {
                if !self.config.public_pool.contains(ip) || tx.meta_get(&pool_key(ip))?.is_some() {
                    return Err(Error::AddressNotFound(ip.to_string()));
                }
                tx.meta_put(&pool_key(ip), id.as_str())?;
                ip
            }
            None => self.allocate_public_ip(tx.as_mut(), id.as_str())?,
        };
        let mut addr = Address { id, owner: ctx.account.clone(), region: ctx.region.clone(), public_ip: ip, association: None, tags: Tags::default() };
        addr.tags = tags::from_list(&tag_list, addr.id.as_str())?;
        tx.save(&addr)?;
        tx.commit()?;
        Ok(addr)
    }

    pub fn associate_address(&self, ctx: &Ctx, req: AssociateAddress) -> Result<AssociationId> {
        let Some(addr_ref) = &req.address else {
            return Err(Error::MissingParameter("AllocationId".into()));
        };
        if req.instance_id.is_none() && req.network_interface_id.is_none() {
            return Err(Error::MissingParameter("InstanceId or NetworkInterfaceId".into()));
        }
        let mut tx = self.begin(ctx)?;
        let mut addr = self.find_address(tx.as_ref(), ctx, addr_ref)?;
        let mut inst = match (&req.instance_id, &req.network_interface_id) {
            (Some(id), _) => self.load_instance(tx.as_ref(), ctx, id)?,
            (None, Some(eni)) => tx
                .list_of::<Instance>(&ctx.account, &ctx.region)?
                .into_iter()
                .find(|i| &i.eni_id == eni && i.state.holds_resources())
                .ok_or_else(|| Error::not_found(ResourceKind::NetworkInterface, eni.as_str()))?,
            (None, None) => unreachable!("checked above"),
        };
        if let (Some(_), Some(eni)) = (&req.instance_id, &req.network_interface_id) {
            if &inst.eni_id != eni {
                return Err(Error::InvalidParameterCombination(format!("Network interface {eni} is not attached to instance {}", inst.id)));
            }
        }
        if matches!(inst.state, InstanceState::ShuttingDown | InstanceState::Terminated) {
            return Err(Error::IncorrectInstanceStateMsg(format!("The instance '{}' is not in a valid state for this operation.", inst.id)));
        }
        if let Some(p) = &req.private_ip {
            if p != &inst.private_ip.to_string() {
                return Err(Error::InvalidParameterValue(format!("The private IP address {p} is not assigned to {}", inst.eni_id)));
            }
        }
        if attached_to(tx.as_ref(), &ctx.account, &ctx.region, &inst.vpc_id)?.is_empty() {
            return Err(Error::GatewayNotAttached(format!("Network {} is not attached to any internet gateway", inst.vpc_id)));
        }
        let mut moved_from = None;
        if let Some(a) = &addr.association {
            if a.instance_id != inst.id && !req.allow_reassociation {
                return Err(Error::AlreadyAssociated(format!(
                    "resource {} is already associated with associate-id {}",
                    addr.id, a.id
                )));
            }
            // Moving the address: take it off the instance that had it.
            if a.instance_id != inst.id {
                if let Some(mut old) = tx.load::<Instance>(a.instance_id.as_str())? {
                    moved_from = Some(old.vpc_id.clone());
                    old.eip = None;
                    if old.auto_public_ip && old.state.is_active() {
                        old.public_ip = Some(self.allocate_public_ip(tx.as_mut(), old.id.as_str())?);
                    }
                    tx.save(&old)?;
                }
            }
        }
        // An instance has one address on its interface: an Elastic IP replaces
        // another Elastic IP and the auto-assigned address alike.
        if let Some(prev) = inst.eip.take() {
            if prev.allocation_id != addr.id {
                if let Some(mut other) = tx.load::<Address>(prev.allocation_id.as_str())? {
                    other.association = None;
                    tx.save(&other)?;
                }
            }
        }
        if let Some(ip) = inst.public_ip.take() {
            self.release_public_ip(tx.as_mut(), ip)?;
        }
        let association = AddressAssociation {
            id: AssociationId::generate(),
            instance_id: inst.id.clone(),
            network_interface_id: inst.eni_id.clone(),
            private_ip: inst.private_ip,
        };
        inst.eip = Some(EipLink { allocation_id: addr.id.clone(), association_id: association.id.clone(), public_ip: addr.public_ip });
        inst.generation += 1;
        let assoc_id = association.id.clone();
        addr.association = Some(association);
        tx.save(&addr)?;
        tx.save(&inst)?;
        tx.commit()?;
        self.sync_network(moved_from.iter().chain([&inst.vpc_id]));
        Ok(assoc_id)
    }

    pub fn disassociate_address(&self, ctx: &Ctx, r: AssociationRef) -> Result<()> {
        let mut tx = self.begin(ctx)?;
        let all = tx.list_of::<Address>(&ctx.account, &ctx.region)?;
        let mut addr = match &r {
            AssociationRef::Association(id) => all
                .into_iter()
                .find(|a| a.association.as_ref().is_some_and(|x| &x.id == id))
                .ok_or_else(|| Error::not_found(ResourceKind::EipAssociation, id.as_str()))?,
            AssociationRef::PublicIp(ip) => {
                let a = all.into_iter().find(|a| a.public_ip.to_string() == *ip).ok_or_else(|| Error::AddressNotFound(ip.clone()))?;
                if a.association.is_none() {
                    return Err(Error::InvalidParameterValue(format!("The address {ip} is not associated")));
                }
                a
            }
        };
        let Some(assoc) = addr.association.take() else {
            return Err(Error::internal("association vanished"));
        };
        let mut vpc = None;
        if let Some(mut inst) = tx.load::<Instance>(assoc.instance_id.as_str())? {
            vpc = Some(inst.vpc_id.clone());
            inst.eip = None;
            // An instance launched with a public address gets a new one back.
            if inst.auto_public_ip && inst.state.is_active() {
                inst.public_ip = Some(self.allocate_public_ip(tx.as_mut(), inst.id.as_str())?);
            }
            inst.generation += 1;
            tx.save(&inst)?;
        }
        tx.save(&addr)?;
        tx.commit()?;
        // The address stops routing to the instance at once.
        self.sync_network(&vpc);
        Ok(())
    }

    pub fn release_address(&self, ctx: &Ctx, r: AddressRef) -> Result<()> {
        let mut tx = self.begin(ctx)?;
        let addr = self.find_address(tx.as_ref(), ctx, &r)?;
        if addr.association.is_some() {
            return Err(Error::AddressInUse(format!("Address {} is in use.", addr.public_ip)));
        }
        self.release_public_ip(tx.as_mut(), addr.public_ip)?;
        tx.remove(&addr)?;
        tx.commit()
    }

    pub fn describe_addresses(&self, ctx: &Ctx, req: DescribeAddresses) -> Result<Vec<Address>> {
        filter::check::<Address>(&req.filters)?;
        let tx = self.store.read()?;
        let all = tx.list_of::<Address>(&ctx.account, &ctx.region)?;
        if let Some(ip) = req.public_ips.iter().find(|ip| !all.iter().any(|a| a.public_ip.to_string() == **ip)) {
            return Err(Error::AddressNotFound(ip.clone()));
        }
        let missing: Vec<String> =
            req.allocation_ids.iter().filter(|id| !all.iter().any(|a| &a.id == *id)).map(|i| i.to_string()).collect();
        if !missing.is_empty() {
            return Err(Error::NotFound { kind: ResourceKind::ElasticIp, ids: missing });
        }
        Ok(all
            .into_iter()
            .filter(|a| req.public_ips.is_empty() || req.public_ips.contains(&a.public_ip.to_string()))
            .filter(|a| req.allocation_ids.is_empty() || req.allocation_ids.contains(&a.id))
            .filter(|a| filter::matches(a, &req.filters))
            .collect())
    }
}
