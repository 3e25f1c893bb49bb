//! The boundary between the control plane and whatever runs instances.
//!
//! The control plane decides; a runtime carries out. Calls here are requests
//! that return quickly: a runtime starts work and later *reports* what it sees
//! through its [`EventSink`] (the VM is running, has stopped, is gone). The
//! lifecycle state machine moves only on those reports. A runtime must handle
//! the requests for one instance in the order they are made, and every request
//! must be safe to repeat (after a crash the control plane repeats what it
//! cannot prove was done).

use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::ids::{ImageId, InstanceId, VolumeId};
use crate::lifecycle::Observation;

/// Everything a runtime needs to run one instance. Rebuilt from the stored
/// instance for every start, so it never goes stale.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceSpec {
    pub id: InstanceId,
    pub instance_type: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub image_id: ImageId,
    /// The catalogue name of a built-in image, if it is one.
    pub image_builtin: Option<String>,
    pub volumes: Vec<VolumeSpec>,
    pub network: NetworkSpec,
    pub user_data: Option<Vec<u8>>,
    pub ssh_public_key: Option<String>,
    pub hostname: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VolumeSpec {
    pub id: VolumeId,
    pub device_name: String,
    pub size_gib: u32,
    pub root: bool,
    pub delete_on_termination: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NetworkSpec {
    pub vpc_id: crate::ids::VpcId,
    pub mac: String,
    pub private_ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub public_ip: Option<Ipv4Addr>,
}

/// What the data plane enforces on one instance's interface: who may send it
/// what, what it may send, and the public address the outside reaches it at.
/// Compiled from security groups, route tables and addresses by
/// `Ec2::sync_network`; a data plane needs no other knowledge of them.
#[derive(Clone, Debug, PartialEq)]
pub struct PortPolicy {
    pub instance: InstanceId,
    /// The only source MAC its frames may carry (anti-spoofing).
    pub mac: String,
    /// The only source address its packets may carry.
    pub private_ip: Ipv4Addr,
    /// Set only while its subnet routes to an attached internet gateway.
    pub public_ip: Option<Ipv4Addr>,
    /// Allowed new flows towards the instance, by source.
    pub ingress: Vec<FlowRule>,
    /// Allowed new flows from the instance, by destination.
    pub egress: Vec<FlowRule>,
}

/// One allow rule: a protocol (and ports) and the peers it applies to.
/// Replies of an allowed flow need no rule: the firewall is stateful.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowRule {
    pub protocol: Protocol,
    /// Never empty: a rule whose referenced group has no members is left out.
    pub peers: Vec<crate::cidr::Ipv4Cidr>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Protocol {
    All,
    Tcp { from: u16, to: u16 },
    Udp { from: u16, to: u16 },
    /// `None` is any type or code.
    Icmp { icmp_type: Option<u8>, code: Option<u8> },
    /// Any other IP protocol, by number.
    Number(u8),
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The host cannot take the instance (`InsufficientInstanceCapacity`).
    #[error("{0}")]
    Capacity(String),
    #[error("{0}")]
    Failed(String),
}

/// Where a runtime reports what it observes.
pub trait EventSink: Send + Sync {
    fn report(&self, id: &InstanceId, observation: Observation);
}

pub trait Runtime: Send + Sync {
    /// A short name for logs and `strato doctor` (`qemu-tcg`, `simulated`, …).
    fn name(&self) -> String;

    /// Can the host take new instances of these sizes, `(vCPUs, MiB)`, now?
    /// `Capacity` if not. Checked before a launch or start is accepted.
    fn admit(&self, _demands: &[(u32, u64)]) -> Result<(), RuntimeError> {
        Ok(())
    }

    /// Boot the instance, making its disks first if they don't exist yet.
    /// Reports `Running` once it is up, `Failed` if it can't be.
    fn start(&self, spec: &InstanceSpec) -> Result<(), RuntimeError>;

    /// Replaces everything the data plane enforces for one VPC: the policy of
    /// each of its instances (those without a VM yet keep theirs until they
    /// get one). Always the full set, so a later call repairs a lost one.
    fn set_vpc_network(&self, _vpc: &crate::ids::VpcId, _ports: &[PortPolicy]) -> Result<(), RuntimeError> {
        Ok(())
    }

    /// Whether `set_vpc_network` governs real packets; when not, the control
    /// plane skips compiling policies nobody enforces.
    fn has_data_plane(&self) -> bool {
        false
    }

    /// Power off: gracefully, or at once with `force`. Reports `Stopped`.
    fn stop(&self, id: &InstanceId, force: bool) -> Result<(), RuntimeError>;

    /// Reset a running instance. No state change is reported.
    fn reboot(&self, id: &InstanceId) -> Result<(), RuntimeError>;

    /// Power off if needed and remove everything the instance had, except the
    /// volumes in `keep`. Reports `Gone`.
    fn destroy(&self, id: &InstanceId, keep: &[VolumeId]) -> Result<(), RuntimeError>;

    /// The instance's serial console so far (bounded).
    fn console_output(&self, id: &InstanceId) -> Result<Vec<u8>, RuntimeError>;

    /// What the runtime sees now, for reconciling after a restart. `None` means
    /// the runtime knows nothing of the instance (no VM, no disks).
    fn observe(&self, id: &InstanceId) -> Option<Observation>;

    /// At start-up: take back the VMs of the instances the control plane
    /// knows (`known`), and remove everything else the runtime finds on the
    /// host (processes, devices, files of instances that no longer exist).
    fn adopt(&self, _known: &[InstanceId]) {}

    /// Is the image with files `key` ready to boot on this host?
    fn image_ready(&self, _key: &str) -> bool {
        true
    }

    /// Makes image files `new_key` from the root volume of `instance`, which
    /// was launched from the image with files `source_key`. Returns at once;
    /// `done` is called when the copy is finished or has failed.
    fn create_image(&self, _instance: &InstanceId, _source_key: &str, _new_key: &str, done: ImageDone) {
        done(Ok(None));
    }

    /// Makes image files `new_key` from a disk file the operator placed on the
    /// host (`location`). A location the runtime cannot use is refused at once;
    /// otherwise `done` is called when the import is finished or has failed.
    fn register_image(&self, _location: &str, _new_key: &str, done: ImageDone) -> Result<(), RuntimeError> {
        done(Ok(None));
        Ok(())
    }
}

/// Completion of an image made in the background: the size of its root disk
/// in bytes when the runtime knows it, or why it failed.
pub type ImageDone = Box<dyn FnOnce(Result<Option<u64>, String>) + Send>;

/// Where a runtime hands the metadata listener of each instance it starts.
pub trait MetadataEndpoint: Send + Sync {
    fn serve(&self, instance: &InstanceId, listener: std::net::TcpListener);
    fn stop(&self, instance: &InstanceId);
}

pub type SharedSink = Arc<dyn EventSink>;
