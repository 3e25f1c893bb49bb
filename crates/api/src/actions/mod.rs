//! The router and the handlers: one file per resource, each handler parsing
//! its parameters into the domain's typed request, calling the service, and
//! writing the response XML with the element names of the EC2 API reference.
//!
//! Adding an action: write its request type and service method in
//! `strato_core::resources::<resource>`, a handler here in `<resource>.rs`,
//! add it to [`ROUTES`], and cover it in `tests/e2e`.

pub mod addresses;
pub mod common;
pub mod images;
pub mod instance_types;
pub mod instances;
pub mod internet_gateways;
pub mod key_pairs;
pub mod network_interfaces;
pub mod regions;
pub mod route_tables;
pub mod security_groups;
pub mod subnets;
pub mod tags;
pub mod vpcs;

use crate::{ApiError, Call};

pub type Handler = fn(&mut Call<'_>) -> Result<(), ApiError>;

/// Every action Strato serves, by its `Action=` name.
pub const ROUTES: &[(&str, Handler)] = &[
    ("DescribeRegions", regions::describe_regions),
    ("DescribeAvailabilityZones", regions::describe_availability_zones),
    ("DescribeInstanceTypes", instance_types::describe_instance_types),
    ("DescribeInstanceTypeOfferings", instance_types::describe_instance_type_offerings),
    ("CreateImage", images::create_image),
    ("RegisterImage", images::register_image),
    ("DescribeImages", images::describe_images),
    ("DescribeImageAttribute", images::describe_image_attribute),
    ("DeregisterImage", images::deregister_image),
    ("CreateKeyPair", key_pairs::create_key_pair),
    ("ImportKeyPair", key_pairs::import_key_pair),
    ("DescribeKeyPairs", key_pairs::describe_key_pairs),
    ("DeleteKeyPair", key_pairs::delete_key_pair),
    ("CreateVpc", vpcs::create_vpc),
    ("DescribeVpcs", vpcs::describe_vpcs),
    ("DeleteVpc", vpcs::delete_vpc),
    ("CreateSubnet", subnets::create_subnet),
    ("DescribeSubnets", subnets::describe_subnets),
    ("DeleteSubnet", subnets::delete_subnet),
    ("ModifySubnetAttribute", subnets::modify_subnet_attribute),
    ("CreateInternetGateway", internet_gateways::create_internet_gateway),
    ("AttachInternetGateway", internet_gateways::attach_internet_gateway),
    ("DetachInternetGateway", internet_gateways::detach_internet_gateway),
    ("DeleteInternetGateway", internet_gateways::delete_internet_gateway),
    ("DescribeInternetGateways", internet_gateways::describe_internet_gateways),
    ("CreateRouteTable", route_tables::create_route_table),
    ("DeleteRouteTable", route_tables::delete_route_table),
    ("CreateRoute", route_tables::create_route),
    ("ReplaceRoute", route_tables::replace_route),
    ("DeleteRoute", route_tables::delete_route),
    ("AssociateRouteTable", route_tables::associate_route_table),
    ("DisassociateRouteTable", route_tables::disassociate_route_table),
    ("DescribeRouteTables", route_tables::describe_route_tables),
    ("CreateSecurityGroup", security_groups::create_security_group),
    ("DescribeSecurityGroups", security_groups::describe_security_groups),
    ("DeleteSecurityGroup", security_groups::delete_security_group),
    ("AuthorizeSecurityGroupIngress", security_groups::authorize_ingress),
    ("AuthorizeSecurityGroupEgress", security_groups::authorize_egress),
    ("RevokeSecurityGroupIngress", security_groups::revoke_ingress),
    ("RevokeSecurityGroupEgress", security_groups::revoke_egress),
    ("DescribeSecurityGroupRules", security_groups::describe_security_group_rules),
    ("ModifySecurityGroupRules", security_groups::modify_security_group_rules),
    ("RunInstances", instances::run_instances),
    ("DescribeInstances", instances::describe_instances),
    ("DescribeInstanceStatus", instances::describe_instance_status),
    ("StartInstances", instances::start_instances),
    ("StopInstances", instances::stop_instances),
    ("RebootInstances", instances::reboot_instances),
    ("TerminateInstances", instances::terminate_instances),
    ("ModifyInstanceAttribute", instances::modify_instance_attribute),
    ("ModifyInstanceMetadataOptions", instances::modify_instance_metadata_options),
    ("DescribeInstanceAttribute", instances::describe_instance_attribute),
    ("GetConsoleOutput", instances::get_console_output),
    ("DescribeNetworkInterfaces", network_interfaces::describe_network_interfaces),
    ("ModifyNetworkInterfaceAttribute", network_interfaces::modify_network_interface_attribute),
    ("AllocateAddress", addresses::allocate_address),
    ("AssociateAddress", addresses::associate_address),
    ("DisassociateAddress", addresses::disassociate_address),
    ("ReleaseAddress", addresses::release_address),
    ("DescribeAddresses", addresses::describe_addresses),
    ("CreateTags", tags::create_tags),
    ("DeleteTags", tags::delete_tags),
    ("DescribeTags", tags::describe_tags),
];

pub fn handler(action: &str) -> Option<Handler> {
    ROUTES.iter().find(|(name, _)| *name == action).map(|(_, h)| *h)
}
