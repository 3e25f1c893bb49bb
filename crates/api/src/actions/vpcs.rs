//! CreateVpc, DescribeVpcs, DeleteVpc.

use strato_core::ids::VpcId;
use strato_core::resources::vpcs::{CreateVpc, DescribeVpcs, Vpc};

use super::common::{next_token, return_true, tag_set};
use crate::xml::Xml;
use crate::{ApiError, Call};

fn render_vpc(x: &mut Xml, v: &Vpc) {
    x.leaf("vpcId", &v.id);
    x.leaf("ownerId", &v.owner);
    x.leaf("state", "available");
    x.leaf("cidrBlock", v.cidr);
    x.list("cidrBlockAssociationSet", [v], |x, v| {
        x.leaf("cidrBlock", v.cidr);
        x.leaf("associationId", &v.cidr_association_id);
        x.node("cidrBlockState", |x| x.leaf("state", "associated"));
    });
    x.list("ipv6CidrBlockAssociationSet", Vec::<()>::new(), |_, _| {});
    x.leaf("dhcpOptionsId", &v.dhcp_options_id);
    tag_set(x, &v.tags);
    x.leaf("instanceTenancy", &v.tenancy);
    x.bool("isDefault", v.is_default);
    x.node("blockPublicAccessStates", |x| x.leaf("internetGatewayBlockMode", "off"));
}

pub fn create_vpc(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = CreateVpc {
        cidr_block: c.p.string("CidrBlock"),
        instance_tenancy: c.p.string("InstanceTenancy"),
        amazon_provided_ipv6: c.p.bool("AmazonProvidedIpv6CidrBlock")?.unwrap_or(false),
        tag_specs: c.p.tag_specs()?,
    };
    c.ready()?;
    let vpc = c.ec2.create_vpc(&c.ctx, req)?;
    c.xml.node("vpc", |x| render_vpc(x, &vpc));
    Ok(())
}

pub fn describe_vpcs(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeVpcs { vpc_ids: c.p.ids("VpcId", VpcId::parse)?, filters: c.p.filters()?, page: c.p.page()? };
    c.ready()?;
    let (vpcs, next) = c.ec2.describe_vpcs(&c.ctx, req)?;
    c.xml.list("vpcSet", vpcs.iter(), render_vpc);
    next_token(&mut c.xml, next);
    Ok(())
}

pub fn delete_vpc(c: &mut Call<'_>) -> Result<(), ApiError> {
    let id = c.p.required_id("VpcId", VpcId::parse)?;
    c.ready()?;
    c.ec2.delete_vpc(&c.ctx, &id)?;
    return_true(&mut c.xml);
    Ok(())
}
