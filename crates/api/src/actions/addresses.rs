//! Elastic IPs: AllocateAddress, AssociateAddress, DisassociateAddress,
//! ReleaseAddress, DescribeAddresses.

use strato_core::error::Error;
use strato_core::ids::{AllocationId, AssociationId, InstanceId, NetworkInterfaceId};
use strato_core::resources::addresses::{AddressRef, AllocateAddress, AssociateAddress, AssociationRef, DescribeAddresses};

use super::common::{return_true, tag_set};
use crate::query::Scope;
use crate::{ApiError, Call};

fn address_ref(p: &Scope<'_>) -> Result<Option<AddressRef>, Error> {
    Ok(match (p.id("AllocationId", AllocationId::parse)?, p.string("PublicIp").filter(|s| !s.is_empty())) {
        (Some(id), _) => Some(AddressRef::Allocation(id)),
        (None, Some(ip)) => Some(AddressRef::PublicIp(ip)),
        (None, None) => None,
    })
}

pub fn allocate_address(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = AllocateAddress {
        domain: c.p.string("Domain"),
        address: c.p.string("Address"),
        public_ipv4_pool: c.p.string("PublicIpv4Pool"),
        network_border_group: c.p.string("NetworkBorderGroup"),
        tag_specs: c.p.tag_specs()?,
    };
    if c.p.string("CustomerOwnedIpv4Pool").is_some() || c.p.string("IpamPoolId").is_some() {
        return Err(Error::Unsupported("Customer-owned and IPAM pools are not supported by Strato".into()).into());
    }
    c.ready()?;
    let a = c.ec2.allocate_address(&c.ctx, req)?;
    let x = &mut c.xml;
    x.leaf("publicIp", a.public_ip);
    x.leaf("allocationId", &a.id);
    x.leaf("domain", "vpc");
    x.leaf("publicIpv4Pool", "amazon");
    x.leaf("networkBorderGroup", &a.region);
    tag_set(x, &a.tags);
    Ok(())
}

pub fn associate_address(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = AssociateAddress {
        address: address_ref(&c.p)?,
        instance_id: c.p.id("InstanceId", InstanceId::parse)?,
        network_interface_id: c.p.id("NetworkInterfaceId", NetworkInterfaceId::parse)?,
        private_ip: c.p.string("PrivateIpAddress"),
        allow_reassociation: c.p.bool("AllowReassociation")?.unwrap_or(false),
    };
    c.ready()?;
    let id = c.ec2.associate_address(&c.ctx, req)?;
    return_true(&mut c.xml);
    c.xml.leaf("associationId", &id);
    Ok(())
}

pub fn disassociate_address(c: &mut Call<'_>) -> Result<(), ApiError> {
    let r = match (c.p.id("AssociationId", AssociationId::parse)?, c.p.string("PublicIp").filter(|s| !s.is_empty())) {
        (Some(id), _) => AssociationRef::Association(id),
        (None, Some(ip)) => AssociationRef::PublicIp(ip),
        (None, None) => return Err(Error::MissingParameter("AssociationId".into()).into()),
    };
    c.ready()?;
    c.ec2.disassociate_address(&c.ctx, r)?;
    return_true(&mut c.xml);
    Ok(())
}

pub fn release_address(c: &mut Call<'_>) -> Result<(), ApiError> {
    let r = address_ref(&c.p)?.ok_or_else(|| Error::MissingParameter("AllocationId".into()))?;
    let _ = c.p.string("NetworkBorderGroup");
    c.ready()?;
    c.ec2.release_address(&c.ctx, r)?;
    return_true(&mut c.xml);
    Ok(())
}

pub fn describe_addresses(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeAddresses {
        public_ips: c.p.strings("PublicIp")?,
        allocation_ids: c.p.ids("AllocationId", AllocationId::parse)?,
        filters: c.p.filters()?,
    };
    c.ready()?;
    let addrs = c.ec2.describe_addresses(&c.ctx, req)?;
    c.xml.list("addressesSet", addrs.iter(), |x, a| {
        x.leaf("publicIp", a.public_ip);
        x.leaf("allocationId", &a.id);
        x.leaf("domain", "vpc");
        if let Some(assoc) = &a.association {
            x.leaf("instanceId", &assoc.instance_id);
            x.leaf("associationId", &assoc.id);
            x.leaf("networkInterfaceId", &assoc.network_interface_id);
            x.leaf("networkInterfaceOwnerId", &a.owner);
            x.leaf("privateIpAddress", assoc.private_ip);
        }
        tag_set(x, &a.tags);
        x.leaf("publicIpv4Pool", "amazon");
        x.leaf("networkBorderGroup", &a.region);
    });
    Ok(())
}
