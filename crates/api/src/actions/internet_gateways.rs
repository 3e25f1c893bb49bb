//! CreateInternetGateway, AttachInternetGateway, DetachInternetGateway,
//! DeleteInternetGateway, DescribeInternetGateways.

use strato_core::ids::{InternetGatewayId, VpcId};
use strato_core::resources::internet_gateways::{DescribeInternetGateways, InternetGateway};

use super::common::{next_token, return_true, tag_set};
use crate::xml::Xml;
use crate::{ApiError, Call};

fn render_gateway(x: &mut Xml, g: &InternetGateway) {
    x.leaf("internetGatewayId", &g.id);
    x.list("attachmentSet", g.attached_vpc.iter(), |x, v| {
        x.leaf("vpcId", v);
        x.leaf("state", "available");
    });
    x.leaf("ownerId", &g.owner);
    tag_set(x, &g.tags);
}

pub fn create_internet_gateway(c: &mut Call<'_>) -> Result<(), ApiError> {
    let tag_specs = c.p.tag_specs()?;
    c.ready()?;
    let igw = c.ec2.create_internet_gateway(&c.ctx, &tag_specs)?;
    c.xml.node("internetGateway", |x| render_gateway(x, &igw));
    Ok(())
}

/// The two parameters AttachInternetGateway and DetachInternetGateway share.
fn gateway_and_vpc(c: &mut Call<'_>) -> Result<(InternetGatewayId, VpcId), ApiError> {
    let igw = c.p.required_id("InternetGatewayId", InternetGatewayId::parse)?;
    let vpc = c.p.required_id("VpcId", VpcId::parse)?;
    c.ready()?;
    Ok((igw, vpc))
}

pub fn attach_internet_gateway(c: &mut Call<'_>) -> Result<(), ApiError> {
    let (igw, vpc) = gateway_and_vpc(c)?;
    c.ec2.attach_internet_gateway(&c.ctx, &igw, &vpc)?;
    return_true(&mut c.xml);
    Ok(())
}

pub fn detach_internet_gateway(c: &mut Call<'_>) -> Result<(), ApiError> {
    let (igw, vpc) = gateway_and_vpc(c)?;
    c.ec2.detach_internet_gateway(&c.ctx, &igw, &vpc)?;
    return_true(&mut c.xml);
    Ok(())
}

pub fn delete_internet_gateway(c: &mut Call<'_>) -> Result<(), ApiError> {
    let id = c.p.required_id("InternetGatewayId", InternetGatewayId::parse)?;
    c.ready()?;
    c.ec2.delete_internet_gateway(&c.ctx, &id)?;
    return_true(&mut c.xml);
    Ok(())
}

pub fn describe_internet_gateways(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeInternetGateways {
        ids: c.p.ids("InternetGatewayId", InternetGatewayId::parse)?,
        filters: c.p.filters()?,
        page: c.p.page()?,
    };
    c.ready()?;
    let (gateways, next) = c.ec2.describe_internet_gateways(&c.ctx, req)?;
    c.xml.list("internetGatewaySet", gateways.iter(), render_gateway);
    next_token(&mut c.xml, next);
    Ok(())
}
