//! One file per resource: its stored model, its typed requests, and the
//! service methods that carry out its actions.

pub mod addresses;
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
pub mod tagging;
pub mod vpcs;
