//! CreateSubnet, DescribeSubnets, DeleteSubnet, ModifySubnetAttribute.

use strato_core::error::Error;
use strato_core::ids::{SubnetId, VpcId};
use strato_core::resources::subnets::{CreateSubnet, DescribeSubnets, SubnetAttribute, SubnetView};

use super::common::{next_token, return_true, tag_set};
use crate::xml::Xml;
use crate::{ApiError, Call};

fn render_subnet(x: &mut Xml, v: &SubnetView) {
    let s = &v.subnet;
    x.leaf("subnetId", &s.id);
    x.leaf("subnetArn", s.arn());
    x.leaf("state", "available");
    x.leaf("ownerId", &s.owner);
    x.leaf("vpcId", &s.vpc_id);
    x.leaf("cidrBlock", s.cidr);
    x.list("ipv6CidrBlockAssociationSet", Vec::<()>::new(), |_, _| {});
    x.leaf("availableIpAddressCount", v.available_ips);
    x.leaf("availabilityZone", &s.availability_zone);
    x.leaf("availabilityZoneId", &s.availability_zone_id);
    x.bool("defaultForAz", s.default_for_az);
    x.bool("mapPublicIpOnLaunch", s.map_public_ip_on_launch);
    x.bool("mapCustomerOwnedIpOnLaunch", false);
    x.bool("assignIpv6AddressOnCreation", false);
    x.bool("enableDns64", false);
    x.bool("ipv6Native", false);
    tag_set(x, &s.tags);
    x.node("privateDnsNameOptionsOnLaunch", |x| {
        x.leaf("hostnameType", &s.hostname_type);
        x.bool("enableResourceNameDnsARecord", s.resource_name_dns_a_record);
        x.bool("enableResourceNameDnsAAAARecord", false);
    });
    x.node("blockPublicAccessStates", |x| x.leaf("internetGatewayBlockMode", "off"));
}

pub fn create_subnet(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = CreateSubnet {
        vpc_id: c.p.id("VpcId", VpcId::parse)?,
        cidr_block: c.p.string("CidrBlock"),
        availability_zone: c.p.string("AvailabilityZone"),
        availability_zone_id: c.p.string("AvailabilityZoneId"),
        tag_specs: c.p.tag_specs()?,
    };
    if c.p.string("Ipv6CidrBlock").is_some() || c.p.bool("Ipv6Native")? == Some(true) {
        return Err(Error::Unsupported("IPv6 subnets are not supported by Strato yet".into()).into());
    }
    c.ready()?;
    let subnet = c.ec2.create_subnet(&c.ctx, req)?;
    c.xml.node("subnet", |x| render_subnet(x, &subnet));
    Ok(())
}

pub fn describe_subnets(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeSubnets { subnet_ids: c.p.ids("SubnetId", SubnetId::parse)?, filters: c.p.filters()?, page: c.p.page()? };
    c.ready()?;
    let (subnets, next) = c.ec2.describe_subnets(&c.ctx, req)?;
    c.xml.list("subnetSet", subnets.iter(), render_subnet);
    next_token(&mut c.xml, next);
    Ok(())
}

pub fn delete_subnet(c: &mut Call<'_>) -> Result<(), ApiError> {
    let id = c.p.required_id("SubnetId", SubnetId::parse)?;
    c.ready()?;
    c.ec2.delete_subnet(&c.ctx, &id)?;
    return_true(&mut c.xml);
    Ok(())
}

pub fn modify_subnet_attribute(c: &mut Call<'_>) -> Result<(), ApiError> {
    let id = c.p.required_id("SubnetId", SubnetId::parse)?;
    let value = |name: &str| c.p.nested(name).bool("Value");
    let mut changes = Vec::new();
    if let Some(v) = value("MapPublicIpOnLaunch")? {
        changes.push(SubnetAttribute::MapPublicIpOnLaunch(v));
    }
    if let Some(v) = value("AssignIpv6AddressOnCreation")? {
        changes.push(SubnetAttribute::AssignIpv6AddressOnCreation(v));
    }
    if let Some(v) = value("EnableDns64")? {
        changes.push(SubnetAttribute::EnableDns64(v));
    }
    if let Some(v) = value("EnableResourceNameDnsARecordOnLaunch")? {
        changes.push(SubnetAttribute::EnableResourceNameDnsARecordOnLaunch(v));
    }
    if let Some(v) = value("EnableResourceNameDnsAAAARecordOnLaunch")? {
        changes.push(SubnetAttribute::EnableResourceNameDnsAaaaRecordOnLaunch(v));
    }
    if let Some(v) = c.p.string("PrivateDnsHostnameTypeOnLaunch") {
        changes.push(SubnetAttribute::PrivateDnsHostnameTypeOnLaunch(v));
    }
    let change = match changes.len() {
        0 => return Err(Error::MissingParameter("an attribute to modify (for example MapPublicIpOnLaunch.Value)".into()).into()),
        1 => changes.remove(0),
        _ => return Err(Error::InvalidParameterCombination("You can only modify one attribute at a time.".into()).into()),
    };
    c.ready()?;
    c.ec2.modify_subnet_attribute(&c.ctx, &id, change)?;
    return_true(&mut c.xml);
    Ok(())
}
