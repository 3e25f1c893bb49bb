//! Strato's domain: typed ids, resources, the instance lifecycle state
//! machine, validation, and the services that carry out each EC2 action.
//!
//! This crate owns the two traits the rest of Strato plugs into: [`store::Store`]
//! (persistence) and [`runtime::Runtime`] (whatever runs instances). It knows
//! nothing of HTTP, XML, SQL or QEMU.

pub mod cidr;
pub mod error;
pub mod filter;
pub mod ids;
pub mod instance_types;
pub mod lifecycle;
pub mod network;
pub mod regions;
pub mod resources;
pub mod runtime;
pub mod service;
pub mod ssh_keys;
pub mod store;
pub mod tags;
pub mod time;

pub use error::{Error, Result};
pub use service::{Ctx, Ec2, ServiceConfig};
