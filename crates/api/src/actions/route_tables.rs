//! CreateRouteTable, DeleteRouteTable, CreateRoute, ReplaceRoute, DeleteRoute,
//! AssociateRouteTable, DisassociateRouteTable, DescribeRouteTables.

use strato_core::ids::{InternetGatewayId, RouteTableAssociationId, RouteTableId, SubnetId, VpcId};
use strato_core::resources::route_tables::{DescribeRouteTables, RouteRequest, RouteTableView};

use super::common::{next_token, return_true, tag_set};
use crate::xml::Xml;
use crate::{ApiError, Call};

fn render_table(x: &mut Xml, v: &RouteTableView) {
    let t = &v.table;
    x.leaf("routeTableId", &t.id);
    x.leaf("vpcId", &t.vpc_id);
    x.leaf("ownerId", &t.owner);
    x.list("routeSet", t.routes.iter(), |x, r| {
        x.leaf("destinationCidrBlock", r.destination);
        x.leaf("gatewayId", r.gateway_id());
        x.leaf("state", v.route_state(r));
        x.leaf("origin", &r.origin);
    });
    x.list("associationSet", t.associations.iter(), |x, a| {
        x.leaf("routeTableAssociationId", &a.id);
        x.leaf("routeTableId", &t.id);
        x.opt("subnetId", a.subnet_id.as_ref());
        x.bool("main", a.main);
        x.node("associationState", |x| x.leaf("state", "associated"));
    });
    x.list("propagatingVgwSet", Vec::<()>::new(), |_, _| {});
    tag_set(x, &t.tags);
}

pub fn create_route_table(c: &mut Call<'_>) -> Result<(), ApiError> {
    let vpc = c.p.id("VpcId", VpcId::parse)?;
    let tag_specs = c.p.tag_specs()?;
    let token = c.p.string("ClientToken");
    c.ready()?;
    let view = c.ec2.create_route_table(&c.ctx, vpc.as_ref(), &tag_specs, token.as_deref())?;
    c.xml.node("routeTable", |x| render_table(x, &view));
    c.xml.opt("clientToken", token);
    Ok(())
}

pub fn delete_route_table(c: &mut Call<'_>) -> Result<(), ApiError> {
    let id = c.p.required_id("RouteTableId", RouteTableId::parse)?;
    c.ready()?;
    c.ec2.delete_route_table(&c.ctx, &id)?;
    return_true(&mut c.xml);
    Ok(())
}

/// Parameters of CreateRoute/ReplaceRoute that name resources Strato does not
/// have (targets other than internet gateways, IPv6 and prefix-list
/// destinations): refused as unsupported rather than as unknown.
const OTHER_TARGETS: &[&str] = &[
    "NatGatewayId", "InstanceId", "NetworkInterfaceId", "VpcPeeringConnectionId", "TransitGatewayId",
    "LocalGatewayId", "CarrierGatewayId", "EgressOnlyInternetGatewayId", "CoreNetworkArn", "VpcEndpointId",
    "OdbNetworkArn", "LocalTarget", "DestinationIpv6CidrBlock", "DestinationPrefixListId",
];

fn route_request(c: &mut Call<'_>) -> Result<RouteRequest, ApiError> {
    let req = RouteRequest {
        table: c.p.id("RouteTableId", RouteTableId::parse)?,
        destination: c.p.string("DestinationCidrBlock"),
        gateway_id: c.p.id("GatewayId", InternetGatewayId::parse)?,
        other_target: OTHER_TARGETS.iter().copied().find(|t| c.p.string(t).is_some()),
    };
    c.ready()?;
    Ok(req)
}

pub fn create_route(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = route_request(c)?;
    c.ec2.put_route(&c.ctx, req, false)?;
    return_true(&mut c.xml);
    Ok(())
}

pub fn replace_route(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = route_request(c)?;
    c.ec2.put_route(&c.ctx, req, true)?;
    return_true(&mut c.xml);
    Ok(())
}

pub fn delete_route(c: &mut Call<'_>) -> Result<(), ApiError> {
    let id = c.p.required_id("RouteTableId", RouteTableId::parse)?;
    let destination = c.p.string("DestinationCidrBlock");
    c.ready()?;
    c.ec2.delete_route(&c.ctx, &id, destination.as_deref())?;
    return_true(&mut c.xml);
    Ok(())
}

pub fn associate_route_table(c: &mut Call<'_>) -> Result<(), ApiError> {
    let id = c.p.required_id("RouteTableId", RouteTableId::parse)?;
    let subnet = c.p.id("SubnetId", SubnetId::parse)?;
    c.ready()?;
    let assoc = c.ec2.associate_route_table(&c.ctx, &id, subnet.as_ref())?;
    c.xml.leaf("associationId", &assoc);
    c.xml.node("associationState", |x| x.leaf("state", "associated"));
    Ok(())
}

pub fn disassociate_route_table(c: &mut Call<'_>) -> Result<(), ApiError> {
    let id = c.p.required_id("AssociationId", RouteTableAssociationId::parse)?;
    c.ready()?;
    c.ec2.disassociate_route_table(&c.ctx, &id)?;
    return_true(&mut c.xml);
    Ok(())
}

pub fn describe_route_tables(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeRouteTables { ids: c.p.ids("RouteTableId", RouteTableId::parse)?, filters: c.p.filters()?, page: c.p.page()? };
    c.ready()?;
    let (tables, next) = c.ec2.describe_route_tables(&c.ctx, req)?;
    c.xml.list("routeTableSet", tables.iter(), render_table);
    next_token(&mut c.xml, next);
    Ok(())
}
