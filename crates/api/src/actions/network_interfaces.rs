//! DescribeNetworkInterfaces, ModifyNetworkInterfaceAttribute.

use strato_core::ids::{NetworkInterfaceId, SecurityGroupId};
use strato_core::resources::instances::Instance;
use strato_core::resources::network_interfaces::{DescribeNetworkInterfaces, ModifyNetworkInterface};

use super::common::{next_token, return_true, tag_set};
use super::instances::{association, group_set};
use crate::xml::Xml;
use crate::{ApiError, Call};

/// Where an interface is written: inside an instance (`networkInterfaceSet`
/// of DescribeInstances), or on its own (DescribeNetworkInterfaces), where
/// EC2 adds its zone, its instance, its tags and its Elastic IP's ids.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    InInstance,
    Standalone,
}

/// An instance's primary interface.
pub fn render_interface(x: &mut Xml, i: &Instance, shape: Shape) {
    let alone = shape == Shape::Standalone;
    x.leaf("networkInterfaceId", &i.eni_id);
    x.leaf("subnetId", &i.subnet_id);
    x.leaf("vpcId", &i.vpc_id);
    if alone {
        x.leaf("availabilityZone", &i.availability_zone);
    }
    x.leaf("description", "");
    x.leaf("ownerId", &i.owner);
    if alone {
        x.bool("requesterManaged", false);
    }
    x.leaf("status", "in-use");
    x.leaf("macAddress", &i.mac);
    x.leaf("privateIpAddress", i.private_ip);
    x.leaf("privateDnsName", i.private_dns_name());
    x.bool("sourceDestCheck", i.source_dest_check);
    group_set(x, i);
    x.node("attachment", |x| {
        x.leaf("attachmentId", &i.eni_attachment_id);
        if alone {
            x.leaf("instanceId", &i.id);
            x.leaf("instanceOwnerId", &i.owner);
        }
        x.leaf("deviceIndex", 0);
        x.leaf("status", "attached");
        x.leaf("attachTime", i.launch_time.iso());
        x.bool("deleteOnTermination", true);
        x.leaf("networkCardIndex", 0);
    });
    if alone {
        interface_association(x, i);
        tag_set(x, &i.eni_tags);
    } else {
        association(x, i);
    }
    x.list("privateIpAddressesSet", [i], |x, i| {
        x.leaf("privateIpAddress", i.private_ip);
        x.leaf("privateDnsName", i.private_dns_name());
        x.bool("primary", true);
        association(x, i);
    });
    x.list("ipv6AddressesSet", Vec::<()>::new(), |_, _| {});
    x.leaf("interfaceType", "interface");
}

/// The interface's public address, with the Elastic IP's ids when it is one.
fn interface_association(x: &mut Xml, i: &Instance) {
    if let Some(ip) = i.effective_public_ip() {
        x.node("association", |x| {
            x.leaf("publicIp", ip);
            x.opt("publicDnsName", i.public_dns_name());
            x.leaf("ipOwnerId", if i.eip.is_some() { i.owner.as_str() } else { "amazon" });
            if let Some(e) = &i.eip {
                x.leaf("allocationId", &e.allocation_id);
                x.leaf("associationId", &e.association_id);
            }
        });
    }
}

pub fn describe_network_interfaces(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeNetworkInterfaces {
        ids: c.p.ids("NetworkInterfaceId", NetworkInterfaceId::parse)?,
        filters: c.p.filters()?,
        page: c.p.page()?,
    };
    c.ready()?;
    let (interfaces, next) = c.ec2.describe_network_interfaces(&c.ctx, req)?;
    c.xml.list("networkInterfaceSet", interfaces.iter(), |x, n| render_interface(x, &n.0, Shape::Standalone));
    next_token(&mut c.xml, next);
    Ok(())
}

pub fn modify_network_interface_attribute(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = ModifyNetworkInterface {
        id: c.p.id("NetworkInterfaceId", NetworkInterfaceId::parse)?,
        groups: c.p.ids("SecurityGroupId", SecurityGroupId::parse)?,
        source_dest_check: c.p.bool("SourceDestCheck.Value")?,
        description: c.p.string("Description.Value"),
    };
    c.ready()?;
    c.ec2.modify_network_interface_attribute(&c.ctx, req)?;
    return_true(&mut c.xml);
    Ok(())
}
