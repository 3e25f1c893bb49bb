//! Instances: launch, describe, the lifecycle actions, attributes, console.
//!
//! The API side of the lifecycle moves an instance only into transitional states
//! (`pending`, `stopping`, `shutting-down`) and then asks the runtime to act,
//! after the transaction commits. The resting states come from the runtime's
//! reports, applied in [`Ec2::apply_observation`]. `lifecycle.rs` holds the table
//! of legal moves; this file holds what each move does to the instance's
//! resources (its public address, its Elastic IP, its volumes).

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Limit, Result};
use crate::filter::{self, Filter, Filterable, Page};
use crate::ids::{
    random_hex, AccountId, AllocationId, AssociationId, AttachmentId, ImageId, InstanceId, NetworkInterfaceId, Region,
    ReservationId, ResourceKind, SecurityGroupId, SubnetId, VolumeId, VpcId,
};
use crate::instance_types::{self, InstanceType};
use crate::network;
use crate::lifecycle::{self, InstanceState, Observation, ObservationOutcome, Request, RequestOutcome, ShutdownBehavior};
use crate::resources::addresses::Address;
use crate::resources::images::Image;
use crate::resources::key_pairs::KeyPair;
use crate::resources::security_groups::SecurityGroup;
use crate::resources::vpcs::Vpc;
use crate::resources::subnets::{adjust_count, ip_key, used_count, Subnet};
use crate::runtime::{InstanceSpec, NetworkSpec, RuntimeError, VolumeSpec};
use crate::service::{Ctx, Ec2};
use crate::store::{ReadTx, Resource, TxExt, WriteTx, WriteTxExt};
use crate::tags::{self, TagSpecification, Tags};
use crate::time::Timestamp;

/// User data may be at most 16 KiB before base64 encoding.
pub const MAX_USER_DATA: usize = 16 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupName {
    pub id: SecurityGroupId,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDevice {
    pub device_name: String,
    pub volume_id: VolumeId,
    pub size_gib: u32,
    pub volume_type: String,
    pub iops: Option<u32>,
    pub delete_on_termination: bool,
    pub attach_time: Timestamp,
    pub root: bool,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataOptions {
    pub http_tokens: String,
    pub hop_limit: u32,
    pub http_endpoint: String,
    pub http_protocol_ipv6: String,
    pub instance_metadata_tags: String,
}

impl Default for MetadataOptions {
    fn default() -> Self {
        MetadataOptions {
            http_tokens: "optional".into(),
            hop_limit: 1,
            http_endpoint: "enabled".into(),
            http_protocol_ipv6: "disabled".into(),
            instance_metadata_tags: "disabled".into(),
        }
    }
}

/// An Elastic IP associated with the instance's primary interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EipLink {
    pub allocation_id: AllocationId,
    pub association_id: AssociationId,
    pub public_ip: Ipv4Addr,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Instance {
    pub id: InstanceId,
    pub owner: AccountId,
    pub region: Region,
    pub reservation_id: ReservationId,
    pub launch_index: u32,
    pub image_id: ImageId,
    pub instance_type: String,
    pub state: InstanceState,
    /// `(code, message)` of `stateReason`.
    pub state_reason: Option<(String, String)>,
    pub state_transition_reason: String,
    /// Bumped on every write; lets observers spot that they raced a change.
    pub generation: u64,
    pub key_name: Option<String>,
    pub launch_time: Timestamp,
    pub availability_zone: String,
    pub vpc_id: VpcId,
    pub subnet_id: SubnetId,
    pub private_ip: Ipv4Addr,
    /// An auto-assigned public address (not an Elastic IP).
    pub public_ip: Option<Ipv4Addr>,
    /// The instance asked for an auto-assigned public address at launch.
    pub auto_public_ip: bool,
    pub eip: Option<EipLink>,
    pub mac: String,
    pub eni_id: NetworkInterfaceId,
    pub eni_attachment_id: AttachmentId,
    pub security_groups: Vec<GroupName>,
    /// Base64, as given.
    pub user_data: Option<String>,
    pub block_devices: Vec<BlockDevice>,
    pub root_device_name: String,
    pub metadata: MetadataOptions,
    pub shutdown_behavior: ShutdownBehavior,
    pub disable_api_termination: bool,
    pub disable_api_stop: bool,
    pub source_dest_check: bool,
    pub ebs_optimized: bool,
    pub monitoring: bool,
    pub tenancy: String,
    pub client_token: Option<String>,
    pub hostname_type: String,
    pub tags: Tags,
    /// Tags of the primary network interface.
    #[serde(default)]
    pub eni_tags: Tags,
    pub terminated_at: Option<Timestamp>,
}

impl Resource for Instance {
    const KIND: ResourceKind = ResourceKind::Instance;
    fn id_str(&self) -> &str {
        self.id.as_str()
    }
    fn owner(&self) -> &AccountId {
        &self.owner
    }
    fn region(&self) -> &Region {
        &self.region
    }
}

fn dashed(ip: Ipv4Addr) -> String {
    ip.to_string().replace('.', "-")
}

impl Instance {
    /// The address the instance is reachable at from outside: its Elastic IP,
    /// else its auto-assigned public address.
    pub fn effective_public_ip(&self) -> Option<Ipv4Addr> {
        self.eip.as_ref().map(|e| e.public_ip).or(self.public_ip)
    }

    pub fn private_dns_name(&self) -> String {
        if self.hostname_type == "resource-name" {
            format!("{}.{}.compute.internal", self.id, self.region)
        } else {
            format!("ip-{}.{}.compute.internal", dashed(self.private_ip), self.region)
        }
    }

    pub fn public_dns_name(&self) -> Option<String> {
        self.effective_public_ip().map(|ip| format!("ec2-{}.{}.compute.amazonaws.com", dashed(ip), self.region))
    }

    pub fn itype(&self) -> Option<&'static InstanceType> {
        instance_types::lookup(&self.instance_type)
    }

    fn touch(&mut self) {
        self.generation += 1;
    }
}

fn tf(v: bool) -> Cow<'static, str> {
    Cow::Borrowed(if v { "true" } else { "false" })
}

impl Filterable for Instance {
    const FILTERS: &'static [&'static str] = &[
        "affinity", "architecture", "availability-zone", "block-device-mapping.device-name",
        "block-device-mapping.volume-id", "block-device-mapping.delete-on-termination", "block-device-mapping.status",
        "client-token", "dns-name", "group-id", "group-name", "hypervisor", "image-id", "instance-id",
        "instance-lifecycle", "instance-state-code", "instance-state-name", "instance-type", "instance.group-id",
        "instance.group-name", "ip-address", "key-name", "launch-index", "launch-time",
        "metadata-options.http-tokens", "metadata-options.http-endpoint", "metadata-options.http-put-response-hop-limit",
        "monitoring-state", "network-interface.network-interface-id", "network-interface.mac-address",
        "network-interface.private-ip-address", "network-interface.addresses.private-ip-address",
        "network-interface.subnet-id", "network-interface.vpc-id", "network-interface.group-id",
        "network-interface.association.public-ip", "association.public-ip", "association.allocation-id",
        "association.association-id", "owner-id", "placement-group-name", "platform-details", "private-dns-name",
        "private-ip-address", "reason", "reservation-id", "root-device-name", "root-device-type", "source-dest-check",
        "state-reason-code", "state-reason-message", "subnet-id", "tenancy", "virtualization-type", "vpc-id",
    ];

    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        let one = |s: String| vec![Cow::Owned(s)];
        let b = |s: &'static str| vec![Cow::Borrowed(s)];
        match name {
            "architecture" => b("x86_64"),
            "availability-zone" => vec![Cow::Borrowed(self.availability_zone.as_str())],
            "block-device-mapping.device-name" => self.block_devices.iter().map(|d| Cow::Borrowed(d.device_name.as_str())).collect(),
            "block-device-mapping.volume-id" => self.block_devices.iter().map(|d| Cow::Borrowed(d.volume_id.as_str())).collect(),
            "block-device-mapping.delete-on-termination" => self.block_devices.iter().map(|d| tf(d.delete_on_termination)).collect(),
            "block-device-mapping.status" => b("attached"),
            "client-token" => self.client_token.iter().map(|t| Cow::Borrowed(t.as_str())).collect(),
            "dns-name" => self.public_dns_name().into_iter().map(Cow::Owned).collect(),
            "group-id" | "instance.group-id" | "network-interface.group-id" => {
                self.security_groups.iter().map(|g| Cow::Borrowed(g.id.as_str())).collect()
            }
            "group-name" | "instance.group-name" => self.security_groups.iter().map(|g| Cow::Borrowed(g.name.as_str())).collect(),
            "hypervisor" => b("xen"),
            "image-id" => vec![Cow::Borrowed(self.image_id.as_str())],
            "instance-id" => vec![Cow::Borrowed(self.id.as_str())],
            "instance-state-code" => one(self.state.code().to_string()),
            "instance-state-name" => b(self.state.name()),
            "instance-type" => vec![Cow::Borrowed(self.instance_type.as_str())],
            "ip-address" | "association.public-ip" | "network-interface.association.public-ip" => {
                self.effective_public_ip().map(|ip| one(ip.to_string())).unwrap_or_default()
            }
            "association.allocation-id" => self.eip.iter().map(|e| Cow::Borrowed(e.allocation_id.as_str())).collect(),
            "association.association-id" => self.eip.iter().map(|e| Cow::Borrowed(e.association_id.as_str())).collect(),
            "key-name" => self.key_name.iter().map(|k| Cow::Borrowed(k.as_str())).collect(),
            "launch-index" => one(self.launch_index.to_string()),
            "launch-time" => one(self.launch_time.iso8601()),
            "metadata-options.http-tokens" => vec![Cow::Borrowed(self.metadata.http_tokens.as_str())],
            "metadata-options.http-endpoint" => vec![Cow::Borrowed(self.metadata.http_endpoint.as_str())],
            "metadata-options.http-put-response-hop-limit" => one(self.metadata.hop_limit.to_string()),
            "monitoring-state" => b(if self.monitoring { "enabled" } else { "disabled" }),
            "network-interface.network-interface-id" => vec![Cow::Borrowed(self.eni_id.as_str())],
            "network-interface.mac-address" => vec![Cow::Borrowed(self.mac.as_str())],
            "private-ip-address" | "network-interface.private-ip-address" | "network-interface.addresses.private-ip-address" => {
                one(self.private_ip.to_string())
            }
            "network-interface.subnet-id" | "subnet-id" => vec![Cow::Borrowed(self.subnet_id.as_str())],
            "network-interface.vpc-id" | "vpc-id" => vec![Cow::Borrowed(self.vpc_id.as_str())],
            "owner-id" => vec![Cow::Borrowed(self.owner.as_str())],
            "platform-details" => b("Linux/UNIX"),
            "private-dns-name" => one(self.private_dns_name()),
            "reason" => vec![Cow::Borrowed(self.state_transition_reason.as_str())],
            "reservation-id" => vec![Cow::Borrowed(self.reservation_id.as_str())],
            "root-device-name" => vec![Cow::Borrowed(self.root_device_name.as_str())],
            "root-device-type" => b("ebs"),
            "source-dest-check" => vec![tf(self.source_dest_check)],
            "state-reason-code" => self.state_reason.iter().map(|(c, _)| Cow::Borrowed(c.as_str())).collect(),
            "state-reason-message" => self.state_reason.iter().map(|(_, m)| Cow::Borrowed(m.as_str())).collect(),
            "tenancy" => vec![Cow::Borrowed(self.tenancy.as_str())],
            "virtualization-type" => b("hvm"),
            _ => vec![],
        }
    }

    fn tags(&self) -> Option<&Tags> {
        Some(&self.tags)
    }
}

/// An instance with what it refers to, for the metadata service.
#[derive(Clone, Debug)]
pub struct MetadataView {
    pub instance: Instance,
    pub subnet: Option<Subnet>,
    pub vpc: Option<Vpc>,
    pub key: Option<KeyPair>,
}

/// A reservation: the instances of one `RunInstances` call.
#[derive(Clone, Debug)]
pub struct Reservation {
    pub id: ReservationId,
    pub owner: AccountId,
    pub instances: Vec<Arc<Instance>>,
}

// ---- requests ------------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct EbsRequest {
    pub volume_size: Option<i64>,
    pub volume_type: Option<String>,
    pub delete_on_termination: Option<bool>,
    pub iops: Option<i64>,
    pub snapshot_id: Option<String>,
    pub encrypted: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct BlockDeviceMappingRequest {
    pub device_name: Option<String>,
    pub ebs: Option<EbsRequest>,
    pub no_device: bool,
    pub virtual_name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct MetadataOptionsRequest {
    pub http_tokens: Option<String>,
    pub hop_limit: Option<i64>,
    pub http_endpoint: Option<String>,
    pub http_protocol_ipv6: Option<String>,
    pub instance_metadata_tags: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct NetworkInterfaceRequest {
    pub device_index: Option<i64>,
    pub subnet_id: Option<SubnetId>,
    pub associate_public_ip: Option<bool>,
    pub groups: Vec<SecurityGroupId>,
    pub private_ip: Option<String>,
    pub delete_on_termination: Option<bool>,
    pub network_interface_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct RunInstances {
    pub image_id: Option<ImageId>,
    pub instance_type: Option<String>,
    pub min_count: Option<i64>,
    pub max_count: Option<i64>,
    pub key_name: Option<String>,
    pub security_group_ids: Vec<SecurityGroupId>,
    pub security_groups: Vec<String>,
    pub subnet_id: Option<SubnetId>,
    pub availability_zone: Option<String>,
    pub tenancy: Option<String>,
    pub private_ip: Option<String>,
    pub user_data: Option<String>,
    pub tag_specs: Vec<TagSpecification>,
    pub block_device_mappings: Vec<BlockDeviceMappingRequest>,
    pub metadata: MetadataOptionsRequest,
    pub shutdown_behavior: Option<String>,
    pub disable_api_termination: Option<bool>,
    pub disable_api_stop: Option<bool>,
    pub ebs_optimized: Option<bool>,
    pub monitoring: Option<bool>,
    pub network_interfaces: Vec<NetworkInterfaceRequest>,
    pub client_token: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct DescribeInstances {
    pub instance_ids: Vec<InstanceId>,
    pub filters: Vec<Filter>,
    pub page: Page,
}

#[derive(Clone, Debug, Default)]
pub struct DescribeInstanceStatus {
    pub instance_ids: Vec<InstanceId>,
    pub filters: Vec<Filter>,
    pub include_all: bool,
    pub page: Page,
}

/// One row of `instancesSet` in Start/Stop/TerminateInstances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChange {
    pub id: InstanceId,
    pub previous: InstanceState,
    pub current: InstanceState,
}

/// One change of `ModifyInstanceAttribute`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttributeChange {
    InstanceType(String),
    UserData(Vec<u8>),
    DisableApiTermination(bool),
    DisableApiStop(bool),
    ShutdownBehavior(String),
    SourceDestCheck(bool),
    EbsOptimized(bool),
    Groups(Vec<SecurityGroupId>),
    DeleteOnTermination(Vec<(String, bool)>),
}

/// The attributes `DescribeInstanceAttribute` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttributeName {
    InstanceType,
    Kernel,
    Ramdisk,
    UserData,
    DisableApiTermination,
    DisableApiStop,
    InstanceInitiatedShutdownBehavior,
    RootDeviceName,
    BlockDeviceMapping,
    ProductCodes,
    SourceDestCheck,
    GroupSet,
    EbsOptimized,
    SriovNetSupport,
    EnaSupport,
    EnclaveOptions,
}

impl AttributeName {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "instanceType" => Self::InstanceType,
            "kernel" => Self::Kernel,
            "ramdisk" => Self::Ramdisk,
            "userData" => Self::UserData,
            "disableApiTermination" => Self::DisableApiTermination,
            "disableApiStop" => Self::DisableApiStop,
            "instanceInitiatedShutdownBehavior" => Self::InstanceInitiatedShutdownBehavior,
            "rootDeviceName" => Self::RootDeviceName,
            "blockDeviceMapping" => Self::BlockDeviceMapping,
            "productCodes" => Self::ProductCodes,
            "sourceDestCheck" => Self::SourceDestCheck,
            "groupSet" => Self::GroupSet,
            "ebsOptimized" => Self::EbsOptimized,
            "sriovNetSupport" => Self::SriovNetSupport,
            "enaSupport" => Self::EnaSupport,
            "enclaveOptions" => Self::EnclaveOptions,
            other => {
                return Err(Error::invalid_value(
                    "attribute",
                    other,
                    "Valid values: instanceType | kernel | ramdisk | userData | disableApiTermination | disableApiStop | instanceInitiatedShutdownBehavior | rootDeviceName | blockDeviceMapping | productCodes | sourceDestCheck | groupSet | ebsOptimized | sriovNetSupport | enaSupport | enclaveOptions",
                ))
            }
        })
    }
}

/// What `GetConsoleOutput` returns.
pub struct ConsoleOutput {
    pub instance_id: InstanceId,
    pub timestamp: Timestamp,
    pub output: Vec<u8>,
}

// ---- validation helpers ---------------------------------------------------------

fn one_of(param: &str, value: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid_value(param, value, &format!("Valid values are: {}.", allowed.join(", "))))
    }
}

fn metadata_options(req: &MetadataOptionsRequest) -> Result<MetadataOptions> {
    apply_metadata_options(MetadataOptions::default(), req)
}

/// Applies the options a request gives over `m`, checking each.
fn apply_metadata_options(mut m: MetadataOptions, req: &MetadataOptionsRequest) -> Result<MetadataOptions> {
    if let Some(t) = &req.http_tokens {
        one_of("HttpTokens", t, &["optional", "required"])?;
        m.http_tokens = t.clone();
    }
    if let Some(h) = req.hop_limit {
        if !(1..=64).contains(&h) {
            return Err(Error::invalid_value("HttpPutResponseHopLimit", &h.to_string(), "It must be between 1 and 64."));
        }
        m.hop_limit = h as u32;
    }
    if let Some(e) = &req.http_endpoint {
        one_of("HttpEndpoint", e, &["enabled", "disabled"])?;
        m.http_endpoint = e.clone();
    }
    if let Some(e) = &req.http_protocol_ipv6 {
        one_of("HttpProtocolIpv6", e, &["enabled", "disabled"])?;
        m.http_protocol_ipv6 = e.clone();
    }
    if let Some(e) = &req.instance_metadata_tags {
        one_of("InstanceMetadataTags", e, &["enabled", "disabled"])?;
        m.instance_metadata_tags = e.clone();
    }
    Ok(m)
}

/// Decodes and size-checks base64 user data.
pub fn decode_user_data(b64: &str) -> Result<Vec<u8>> {
    let cleaned: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|_| Error::InvalidParameterValue("Invalid BASE64 encoding of user data.".into()))?;
    if raw.len() > MAX_USER_DATA {
        return Err(Error::InvalidParameterValue(format!("User data is limited to {MAX_USER_DATA} bytes.")));
    }
    Ok(raw)
}

const VOLUME_TYPES: &[&str] = &["standard", "gp2", "gp3", "io1", "io2", "sc1", "st1"];

fn valid_device_name(d: &str) -> bool {
    let rest = d.strip_prefix("/dev/sd").or_else(|| d.strip_prefix("/dev/xvd"));
    match rest {
        Some(r) => {
            let mut c = r.chars();
            matches!(c.next(), Some('a'..='z')) && c.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit()) && r.len() <= 3
        }
        None => false,
    }
}

fn block_devices(image: &Image, reqs: &[BlockDeviceMappingRequest], now: Timestamp) -> Result<Vec<BlockDevice>> {
    let mut root = BlockDevice {
        device_name: image.root_device_name.clone(),
        volume_id: VolumeId::generate(),
        size_gib: image.root_size_gib,
        volume_type: "gp3".into(),
        iops: None,
        delete_on_termination: true,
        attach_time: now,
        root: true,
        tags: Tags::default(),
    };
    let mut extra = Vec::new();
    let mut seen = HashSet::new();
    for m in reqs {
        let Some(dev) = m.device_name.clone() else {
            return Err(Error::MissingParameter("BlockDeviceMapping.N.DeviceName".into()));
        };
        if !seen.insert(dev.clone()) {
            return Err(Error::InvalidBlockDeviceMapping(format!("The device '{dev}' is used in more than one block-device mapping")));
        }
        if !valid_device_name(&dev) {
            return Err(Error::InvalidBlockDeviceMapping(format!("Invalid device name {dev}")));
        }
        if m.no_device || m.virtual_name.is_some() {
            // Instance-store and suppressed mappings carry no EBS volume.
            continue;
        }
        let Some(ebs) = &m.ebs else {
            return Err(Error::InvalidBlockDeviceMapping(format!("The mapping for {dev} needs an Ebs, NoDevice or VirtualName")));
        };
        if let Some(t) = &ebs.volume_type {
            if !VOLUME_TYPES.contains(&t.as_str()) {
                return Err(Error::invalid_value("volumeType", t, &format!("Valid values are: {}.", VOLUME_TYPES.join(", "))));
            }
        }
        if ebs.encrypted == Some(true) {
            return Err(Error::Unsupported("Encrypted EBS volumes are not supported by Strato yet".into()));
        }
        if let Some(s) = ebs.volume_size {
            if !(1..=16384).contains(&s) {
                return Err(Error::InvalidParameterValue(format!(
                    "Volume size {s} is invalid: gp2/gp3 volumes are 1 to 16384 GiB"
                )));
            }
        }
        if dev == image.root_device_name {
            if let Some(s) = ebs.volume_size {
                if (s as u32) < image.root_size_gib {
                    return Err(Error::InvalidBlockDeviceMapping(format!(
                        "Volume of size {s}GB is smaller than snapshot '{}', expect size >= {}GB",
                        image.snapshot_id, image.root_size_gib
                    )));
                }
                root.size_gib = s as u32;
            }
            if let Some(t) = &ebs.volume_type {
                root.volume_type = t.clone();
            }
            if let Some(d) = ebs.delete_on_termination {
                root.delete_on_termination = d;
            }
            root.iops = ebs.iops.map(|i| i as u32);
        } else {
            if ebs.snapshot_id.is_some() {
                return Err(Error::Unsupported("Volumes from snapshots are not supported by Strato yet".into()));
            }
            let Some(size) = ebs.volume_size else {
                return Err(Error::InvalidBlockDeviceMapping(format!(
                    "The request must contain the parameter size or snapshotId for device {dev}"
                )));
            };
            extra.push(BlockDevice {
                device_name: dev,
                volume_id: VolumeId::generate(),
                size_gib: size as u32,
                volume_type: ebs.volume_type.clone().unwrap_or_else(|| "gp2".into()),
                iops: ebs.iops.map(|i| i as u32),
                delete_on_termination: ebs.delete_on_termination.unwrap_or(true),
                attach_time: now,
                root: false,
                tags: Tags::default(),
            });
        }
    }
    let mut all = vec![root];
    all.extend(extra);
    Ok(all)
}

fn random_mac() -> String {
    // 02: locally administered, unicast.
    let h = random_hex(10);
    let mut mac = String::from("02");
    for i in 0..5 {
        mac.push(':');
        mac.push_str(&h[i * 2..i * 2 + 2]);
    }
    mac
}

fn fingerprint(req: &RunInstances) -> Result<String> {
    let mut r = req.clone();
    r.client_token = None;
    let json = serde_json::to_string(&r).map_err(Error::internal)?;
    Ok(hex::encode(Sha256::digest(json.as_bytes())))
}

#[derive(Serialize, Deserialize)]
struct IdempotencyRecord {
    fingerprint: String,
    reservation_id: ReservationId,
    instance_ids: Vec<InstanceId>,
}

fn user_initiated(now: Timestamp) -> String {
    let iso = now.iso8601();
    format!("User initiated ({} {} GMT)", &iso[..10], &iso[11..19])
}

/// The result of applying one report.
struct Moved {
    from: InstanceState,
    to: InstanceState,
    destroy: bool,
    keep: Vec<VolumeId>,
}

/// What to ask of the runtime once a transaction has committed.
enum After {
    Start(InstanceId),
    Stop(InstanceId, bool),
    Reboot(InstanceId),
    Destroy(InstanceId, Vec<VolumeId>),
}

impl Ec2 {
    pub(crate) fn load_instance(&self, tx: &dyn ReadTx, ctx: &Ctx, id: &InstanceId) -> Result<Instance> {
        tx.load_owned::<Instance>(id.as_str(), &ctx.account, &ctx.region)?
            .ok_or_else(|| Error::not_found(ResourceKind::Instance, id.as_str()))
    }

    /// Loads every instance named, or fails naming all that are missing.
    fn load_instances(&self, tx: &dyn ReadTx, ctx: &Ctx, ids: &[InstanceId]) -> Result<Vec<Instance>> {
        if ids.is_empty() {
            return Err(Error::MissingParameter("InstanceId".into()));
        }
        let mut out = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            match tx.load_owned::<Instance>(id.as_str(), &ctx.account, &ctx.region)? {
                Some(i) if !out.iter().any(|o: &Instance| o.id == i.id) => out.push(i),
                Some(_) => {}
                None => missing.push(id.to_string()),
            }
        }
        if !missing.is_empty() {
            return Err(Error::NotFound { kind: ResourceKind::Instance, ids: missing });
        }
        Ok(out)
    }

    /// Resolves the groups of a launch or a group change, checking the VPC and
    /// the per-interface limit.
    fn resolve_groups(&self, tx: &dyn ReadTx, ctx: &Ctx, vpc: &Vpc, subnet: &SubnetId, ids: &[SecurityGroupId], names: &[String]) -> Result<Vec<GroupName>> {
        let vpc_is_default = vpc.is_default;
        let vpc = &vpc.id;
        let all = tx.list_of::<SecurityGroup>(&ctx.account, &ctx.region)?;
        let mut out: Vec<GroupName> = Vec::new();
        for id in ids {
            let g = all.iter().find(|g| &g.id == id).ok_or_else(|| Error::not_found(ResourceKind::SecurityGroup, id.as_str()))?;
            if &g.vpc_id != vpc {
                return Err(Error::InvalidParameter(format!(
                    "Security group {} and subnet {subnet} belong to different networks.",
                    g.id
                )));
            }
            if !out.iter().any(|o| o.id == g.id) {
                out.push(GroupName { id: g.id.clone(), name: g.name.clone() });
            }
        }
        if !names.is_empty() && !vpc_is_default {
            return Err(Error::InvalidParameterCombination(
                "The parameter groupName cannot be used with the parameter subnet".into(),
            ));
        }
        for n in names {
            let g = all
                .iter()
                .find(|g| &g.vpc_id == vpc && &g.name == n)
                .ok_or_else(|| Error::GroupNameNotFound { name: n.clone(), vpc: Some(vpc.to_string()) })?;
            if !out.iter().any(|o| o.id == g.id) {
                out.push(GroupName { id: g.id.clone(), name: g.name.clone() });
            }
        }
        if out.is_empty() {
            let g = all
                .iter()
                .find(|g| &g.vpc_id == vpc && g.is_default())
                .ok_or_else(|| Error::GroupNameNotFound { name: "default".into(), vpc: Some(vpc.to_string()) })?;
            out.push(GroupName { id: g.id.clone(), name: g.name.clone() });
        }
        if out.len() > self.config.limits.security_groups_per_interface {
            return Err(Error::LimitExceeded {
                limit: Limit::SecurityGroupsPerInterface,
                message: "The maximum number of security groups per interface has been reached.".into(),
            });
        }
        Ok(out)
    }

    pub fn run_instances(&self, ctx: &Ctx, req: RunInstances) -> Result<Reservation> {
        let (Some(min), Some(max)) = (req.min_count, req.max_count) else {
            return Err(Error::MissingParameter(if req.min_count.is_none() { "MinCount" } else { "MaxCount" }.into()));
        };
        if min < 1 || max < 1 {
            return Err(Error::InvalidParameterValue(format!(
                "Instance count must be at least 1 (MinCount={min}, MaxCount={max})."
            )));
        }
        if min > max {
            return Err(Error::InvalidParameterValue(format!(
                "MinCount ({min}) must not be greater than MaxCount ({max})."
            )));
        }
        if let Some(t) = &req.client_token {
            if t.len() > 64 || !t.is_ascii() {
                return Err(Error::InvalidParameterValue("ClientToken is up to 64 ASCII characters".into()));
            }
        }
        let Some(image_id) = req.image_id.clone() else {
            return Err(Error::MissingParameter("ImageId".into()));
        };
        let type_name = req.instance_type.clone().unwrap_or_else(|| instance_types::DEFAULT_TYPE.to_string());
        let itype = instance_types::lookup(&type_name)
            .ok_or_else(|| Error::InvalidParameterValue(format!("Invalid value '{type_name}' for InstanceType.")))?;
        let user_data = match &req.user_data {
            Some(u) => {
                decode_user_data(u)?;
                Some(u.chars().filter(|c| !c.is_ascii_whitespace()).collect::<String>())
            }
            None => None,
        };
        let metadata = metadata_options(&req.metadata)?;
        let shutdown = match req.shutdown_behavior.as_deref() {
            None | Some("stop") => ShutdownBehavior::Stop,
            Some("terminate") => ShutdownBehavior::Terminate,
            Some(other) => return Err(Error::invalid_value("InstanceInitiatedShutdownBehavior", other, "Valid values are stop and terminate.")),
        };
        let tenancy = req.tenancy.clone().unwrap_or_else(|| "default".into());
        one_of("tenancy", &tenancy, &["default", "dedicated", "host"])?;
        let allowed = [ResourceKind::Instance, ResourceKind::Volume, ResourceKind::NetworkInterface];
        let instance_tags = tags::for_kind(&req.tag_specs, ResourceKind::Instance, &allowed)?;
        let volume_tags = tags::for_kind(&req.tag_specs, ResourceKind::Volume, &allowed)?;
        let eni_tags = tags::for_kind(&req.tag_specs, ResourceKind::NetworkInterface, &allowed)?;

        // The primary network interface, if given the newer way.
        if req.network_interfaces.len() > 1 || req.network_interfaces.iter().any(|n| n.device_index.unwrap_or(0) != 0) {
            return Err(Error::Unsupported("Strato instances have one network interface (DeviceIndex 0)".into()));
        }
        let ni = req.network_interfaces.first();
        if let Some(ni) = ni {
            if ni.network_interface_id.is_some() {
                return Err(Error::Unsupported("Attaching an existing network interface at launch is not supported yet".into()));
            }
            if req.subnet_id.is_some() {
                return Err(Error::InvalidParameterCombination(
                    "Network interfaces and an instance-level subnet ID may not be specified on the same request".into(),
                ));
            }
            if !req.security_group_ids.is_empty() || !req.security_groups.is_empty() {
                return Err(Error::InvalidParameterCombination(
                    "Network interfaces and an instance-level security groups may not be specified on the same request".into(),
                ));
            }
            if req.private_ip.is_some() {
                return Err(Error::InvalidParameterCombination(
                    "Network interfaces and an instance-level private IP address should not be specified on the same request".into(),
                ));
            }
        }
        let subnet_req = ni.and_then(|n| n.subnet_id.clone()).or_else(|| req.subnet_id.clone());
        let group_ids: Vec<SecurityGroupId> = ni.map(|n| n.groups.clone()).unwrap_or_else(|| req.security_group_ids.clone());
        let private_ip_req = ni.and_then(|n| n.private_ip.clone()).or_else(|| req.private_ip.clone());
        let private_ip_req = match private_ip_req {
            Some(s) => Some(Ipv4Addr::from_str(&s).map_err(|_| Error::invalid_value("PrivateIpAddress", &s, "This is not a valid IPv4 address."))?),
            None => None,
        };
        if private_ip_req.is_some() && max > 1 {
            return Err(Error::InvalidParameterCombination(
                "A private IP address can only be given when launching one instance (MaxCount=1)".into(),
            ));
        }

        let mut tx = self.begin(ctx)?;

        // Same client token: the same launch, or a mismatch.
        let token_key = req.client_token.as_ref().map(|t| format!("idem/{}/{}/RunInstances/{t}", ctx.account, ctx.region));
        // Only a launch with a client token needs its fingerprint.
        let print = match &token_key {
            Some(_) => fingerprint(&req)?,
            None => String::new(),
        };
        if let Some(key) = &token_key {
            if let Some(raw) = tx.meta_get(key)? {
                let rec: IdempotencyRecord = serde_json::from_str(&raw).map_err(Error::internal)?;
                if rec.fingerprint != print {
                    return Err(Error::IdempotentParameterMismatch(
                        "The client token you have provided is associated with a resource that is already deleted or was made with different parameters. Please use a different client token.".into(),
                    ));
                }
                let mut instances = Vec::new();
                for id in &rec.instance_ids {
                    if let Some(i) = tx.load::<Instance>(id.as_str())? {
                        instances.push(Arc::new(i));
                    }
                }
                return Ok(Reservation { id: rec.reservation_id, owner: ctx.account.clone(), instances });
            }
        }

        let mut image = self.visible_image(tx.as_ref(), ctx, &image_id)?;
        if self.refresh_builtin_state(&mut image) {
            tx.save(&image)?;
        }
        if image.state != "available" {
            let hint = image.builtin.as_deref().map(|k| format!(" Build it on the host with `strato image build {k}`.")).unwrap_or_default();
            return Err(Error::ImageUnavailable(format!("The image {image_id} is not available (state {}).{hint}", image.state)));
        }
        if let Some(k) = &req.key_name {
            if self.key_by_name(tx.as_ref(), ctx, k)?.is_none() {
                return Err(Error::KeyNameNotFound(k.clone()));
            }
        }
        let subnet = match &subnet_req {
            Some(id) => self.load_subnet(tx.as_ref(), ctx, id)?,
            None => {
                let vpc = self.default_vpc(tx.as_ref(), ctx)?.ok_or(Error::VpcIdNotSpecified)?;
                let subnets: Vec<Subnet> = tx
                    .list_of::<Subnet>(&ctx.account, &ctx.region)?
                    .into_iter()
                    .filter(|s| s.vpc_id == vpc.id && s.default_for_az)
                    .collect();
                let pick = match &req.availability_zone {
                    Some(az) => subnets.into_iter().find(|s| &s.availability_zone == az),
                    None => subnets.into_iter().next(),
                };
                pick.ok_or_else(|| match &req.availability_zone {
                    Some(az) => Error::invalid_value("availabilityZone", az, "There is no default subnet in that availability zone."),
                    None => Error::VpcIdNotSpecified,
                })?
            }
        };
        if let Some(az) = &req.availability_zone {
            if az != &subnet.availability_zone {
                return Err(Error::invalid_value(
                    "availabilityZone",
                    az,
                    &format!("Subnet {} is in availability zone {}.", subnet.id, subnet.availability_zone),
                ));
            }
        }
        let vpc = self.load_vpc(tx.as_ref(), ctx, &subnet.vpc_id)?;
        let groups = self.resolve_groups(tx.as_ref(), ctx, &vpc, &subnet.id, &group_ids, &req.security_groups)?;

        if let Some(ip) = private_ip_req {
            if !subnet.cidr.contains(ip) {
                return Err(Error::InvalidParameterValue(format!(
                    "Address {ip} does not fall within the subnet's address range"
                )));
            }
            if subnet.cidr.is_reserved(ip) {
                return Err(Error::InvalidParameterValue(format!(
                    "Address {ip} is reserved by AWS in subnet {} (the first four and the last address are)",
                    subnet.id
                )));
            }
            if tx.meta_get(&ip_key(&subnet.id, ip))?.is_some() {
                return Err(Error::AddressInUse(format!("Address {ip} is in use.")));
            }
        }
        let free = subnet.cidr.usable().saturating_sub(used_count(tx.as_ref(), &subnet.id)?) as i64;
        let vcpus_used = active_vcpus(tx.as_ref(), ctx)?;
        let vcpu_room = (self.config.limits.vcpus_per_region.saturating_sub(vcpus_used) / itype.vcpus.max(1)) as i64;
        let count = max.min(free).min(vcpu_room);
        if count < min {
            if vcpu_room < min {
                return Err(Error::LimitExceeded {
                    limit: Limit::Vcpus,
                    message: format!(
                        "You have requested more vCPU capacity than your current vCPU limit of {} allows for the instance bucket that the specified instance type belongs to.",
                        self.config.limits.vcpus_per_region
                    ),
                });
            }
            return Err(Error::InsufficientFreeAddresses(format!(
                "There are not enough free addresses in subnet '{}' to satisfy the requested number of instances.",
                subnet.id
            )));
        }
        let demands: Vec<(u32, u64)> = (0..count).map(|_| (itype.vcpus, itype.memory_mib)).collect();
        self.runtime.admit(&demands).map_err(|e| match e {
            RuntimeError::Capacity(m) => Error::InsufficientInstanceCapacity(m),
            RuntimeError::Failed(m) => Error::internal(m),
        })?;

        let now = self.now();
        let public = ni.and_then(|n| n.associate_public_ip).unwrap_or(subnet.map_public_ip_on_launch);
        let reservation_id = ReservationId::generate();
        let mut out = Vec::new();
        for idx in 0..count {
            let id = InstanceId::generate();
            let private_ip = match private_ip_req {
                Some(ip) => ip,
                None => self.next_free(tx.as_mut(), &subnet)?.ok_or_else(|| Error::internal("address count and index disagree"))?,
            };
            let public_ip = if public { Some(self.allocate_public_ip(tx.as_mut(), id.as_str())?) } else { None };
            let mut inst = Instance {
                id: id.clone(),
                owner: ctx.account.clone(),
                region: ctx.region.clone(),
                reservation_id: reservation_id.clone(),
                launch_index: idx as u32,
                image_id: image.id.clone(),
                instance_type: type_name.clone(),
                state: InstanceState::Pending,
                state_reason: Some(("pending".into(), "pending".into())),
                state_transition_reason: String::new(),
                generation: 0,
                key_name: req.key_name.clone(),
                launch_time: now,
                availability_zone: subnet.availability_zone.clone(),
                vpc_id: vpc.id.clone(),
                subnet_id: subnet.id.clone(),
                private_ip,
                public_ip,
                auto_public_ip: public,
                eip: None,
                mac: random_mac(),
                eni_id: NetworkInterfaceId::generate(),
                eni_attachment_id: AttachmentId::generate(),
                security_groups: groups.clone(),
                user_data: user_data.clone(),
                block_devices: block_devices(&image, &req.block_device_mappings, now)?,
                root_device_name: image.root_device_name.clone(),
                metadata: metadata.clone(),
                shutdown_behavior: shutdown,
                disable_api_termination: req.disable_api_termination.unwrap_or(false),
                disable_api_stop: req.disable_api_stop.unwrap_or(false),
                source_dest_check: true,
                ebs_optimized: req.ebs_optimized.unwrap_or(false),
                monitoring: req.monitoring.unwrap_or(false),
                tenancy: tenancy.clone(),
                client_token: req.client_token.clone(),
                hostname_type: subnet.hostname_type.clone(),
                tags: Tags::default(),
                eni_tags: Tags::default(),
                terminated_at: None,
            };
            inst.tags = tags::from_list(&instance_tags, id.as_str())?;
            inst.eni_tags = tags::from_list(&eni_tags, inst.eni_id.as_str())?;
            for d in &mut inst.block_devices {
                d.tags = tags::from_list(&volume_tags, d.volume_id.as_str())?;
            }
            self.save_instance(tx.as_mut(), None, &inst)?;
            out.push(inst);
        }
        if let Some(key) = &token_key {
            let rec = IdempotencyRecord {
                fingerprint: print,
                reservation_id: reservation_id.clone(),
                instance_ids: out.iter().map(|i| i.id.clone()).collect(),
            };
            tx.meta_put(key, &serde_json::to_string(&rec).map_err(Error::internal)?)?;
        }
        // The specs are made before the commit, from what this launch already
        // holds, so starting needs no second trip to the store.
        let key_line = match &req.key_name {
            Some(k) => self.key_by_name(tx.as_ref(), ctx, k)?.map(|kp| kp.public_key_line()),
            None => None,
        };
        let specs: Vec<InstanceSpec> = out
            .iter()
            .map(|i| spec_of(i, itype, &subnet, image.builtin.clone(), key_line.clone()))
            .collect::<Result<_>>()?;
        tx.commit()?;
        self.sync_network([&subnet.vpc_id]);
        for spec in specs {
            self.start_spec(spec);
        }
        Ok(Reservation { id: reservation_id, owner: ctx.account.clone(), instances: out.into_iter().map(Arc::new).collect() })
    }

    /// Builds the runtime's view of an instance from its stored record.
    pub fn instance_spec(&self, tx: &dyn ReadTx, inst: &Instance) -> Result<InstanceSpec> {
        let itype = inst.itype().ok_or_else(|| Error::internal(format!("unknown type {}", inst.instance_type)))?;
        let subnet = tx
            .load::<Subnet>(inst.subnet_id.as_str())?
            .ok_or_else(|| Error::internal(format!("the subnet of {} is gone", inst.id)))?;
        let image = tx.load::<Image>(inst.image_id.as_str())?;
        let ssh_public_key = match &inst.key_name {
            Some(k) => tx
                .list_of::<KeyPair>(&inst.owner, &inst.region)?
                .into_iter()
                .find(|kp| &kp.name == k)
                .map(|kp| kp.public_key_line()),
            None => None,
        };
        spec_of(inst, itype, &subnet, image.and_then(|i| i.builtin), ssh_public_key)
    }

    /// Asks the runtime to start an instance; a refusal becomes a failure report.
    fn start_spec(&self, spec: InstanceSpec) {
        if let Err(e) = self.runtime.start(&spec) {
            tracing::warn!(instance = %spec.id, error = %e, "runtime refused to start an instance");
            if let Err(e2) = self.apply_observation(&spec.id, Observation::Failed(e.to_string())) {
                tracing::error!(instance = %spec.id, error = %e2, "could not record a runtime failure");
            }
        }
    }

    /// Carries out a runtime request after a commit. A runtime that refuses is
    /// reported back as a failure, which the lifecycle turns into a state.
    fn act(&self, after: After) {
        let (id, result) = match after {
            After::Start(id) => {
                let spec = self.store.read().and_then(|tx| {
                    let inst = tx.load::<Instance>(id.as_str())?.ok_or_else(|| Error::internal("instance vanished"))?;
                    self.instance_spec(tx.as_ref(), &inst)
                });
                match spec {
                    Ok(spec) => {
                        self.start_spec(spec);
                        return;
                    }
                    Err(e) => (id, Err(RuntimeError::Failed(e.to_string()))),
                }
            }
            After::Stop(id, force) => {
                let r = self.runtime.stop(&id, force);
                (id, r)
            }
            After::Reboot(id) => {
                let r = self.runtime.reboot(&id);
                (id, r)
            }
            After::Destroy(id, keep) => {
                let r = self.runtime.destroy(&id, &keep);
                (id, r)
            }
        };
        if let Err(e) = result {
            tracing::warn!(instance = %id, error = %e, "runtime refused a request");
            if let Err(e2) = self.apply_observation(&id, Observation::Failed(e.to_string())) {
                tracing::error!(instance = %id, error = %e2, "could not record a runtime failure");
            }
        }
    }

    pub fn describe_instances(&self, ctx: &Ctx, req: DescribeInstances) -> Result<(Vec<Reservation>, Option<String>)> {
        filter::check::<Instance>(&req.filters)?;
        req.page.validate(5, 1000)?;
        if req.page.max_results.is_some() && !req.instance_ids.is_empty() {
            return Err(Error::InvalidParameterCombination(
                "The parameter instancesSet cannot be used with the parameter maxResults".into(),
            ));
        }
        let tx = self.store.read()?;
        let all = tx.list_shared::<Instance>(&ctx.account, &ctx.region)?;
        let missing: Vec<String> =
            req.instance_ids.iter().filter(|id| !all.iter().any(|i| &i.id == *id)).map(|i| i.to_string()).collect();
        if !missing.is_empty() {
            return Err(Error::NotFound { kind: ResourceKind::Instance, ids: missing });
        }
        let picked: Vec<Arc<Instance>> = all
            .into_iter()
            .filter(|i| req.instance_ids.is_empty() || req.instance_ids.contains(&i.id))
            .filter(|i| filter::matches(&**i, &req.filters))
            .collect();
        let (page, next) = req.page.apply(picked)?;
        Ok((group_reservations(page, &ctx.account), next))
    }

    pub fn describe_instance_status(&self, ctx: &Ctx, req: DescribeInstanceStatus) -> Result<(Vec<Arc<Instance>>, Option<String>)> {
        const FILTERS: &[&str] = &[
            "availability-zone", "instance-state-code", "instance-state-name", "instance-status.reachability",
            "instance-status.status", "system-status.reachability", "system-status.status", "instance-id",
        ];
        for f in &req.filters {
            if !FILTERS.contains(&f.name.as_str()) {
                return Err(Error::InvalidFilter(f.name.clone()));
            }
        }
        req.page.validate(5, 1000)?;
        if req.page.max_results.is_some() && !req.instance_ids.is_empty() {
            return Err(Error::InvalidParameterCombination(
                "The parameter instancesSet cannot be used with the parameter maxResults".into(),
            ));
        }
        let tx = self.store.read()?;
        let all = tx.list_shared::<Instance>(&ctx.account, &ctx.region)?;
        let missing: Vec<String> =
            req.instance_ids.iter().filter(|id| !all.iter().any(|i| &i.id == *id)).map(|i| i.to_string()).collect();
        if !missing.is_empty() {
            return Err(Error::NotFound { kind: ResourceKind::Instance, ids: missing });
        }
        let picked = all
            .into_iter()
            .filter(|i| req.instance_ids.is_empty() || req.instance_ids.contains(&i.id))
            .filter(|i| req.include_all || i.state == InstanceState::Running)
            .filter(|i| {
                let status = status_of(i);
                req.filters.iter().all(|f| {
                    let v: Vec<String> = match f.name.as_str() {
                        "availability-zone" => vec![i.availability_zone.clone()],
                        "instance-state-code" => vec![i.state.code().to_string()],
                        "instance-state-name" => vec![i.state.name().to_string()],
                        "instance-id" => vec![i.id.to_string()],
                        "instance-status.status" | "system-status.status" => vec![status.0.to_string()],
                        _ => vec![status.1.to_string()],
                    };
                    v.iter().any(|x| f.values.iter().any(|p| filter::wildcard(p, x)))
                })
            })
            .collect();
        req.page.apply(picked)
    }

    /// Applies one lifecycle request to a set of instances, all or nothing.
    fn change_state(&self, ctx: &Ctx, ids: &[InstanceId], req: Request, force: bool) -> Result<Vec<StateChange>> {
        let mut tx = self.begin(ctx)?;
        let instances = self.load_instances(tx.as_ref(), ctx, ids)?;
        // Check every instance before changing any.
        for i in &instances {
            if on_request_checked(i, req)? == RequestOutcome::Illegal {
                return Err(Error::IncorrectInstanceState { id: i.id.to_string(), verb: req.verb() });
            }
        }
        let now = self.now();
        let mut changes = Vec::new();
        let mut after = Vec::new();
        let mut vpcs = Vec::new();
        for mut i in instances {
            let before = i.clone();
            let previous = i.state;
            match lifecycle::on_request(i.state, req) {
                RequestOutcome::Move(next) => {
                    i.state = next;
                    vpcs.push(i.vpc_id.clone());
                    match req {
                        Request::Start => {
                            i.state_reason = Some(("pending".into(), "pending".into()));
                            i.state_transition_reason = String::new();
                            if i.auto_public_ip && i.eip.is_none() && i.public_ip.is_none() {
                                i.public_ip = Some(self.allocate_public_ip(tx.as_mut(), i.id.as_str())?);
                            }
                            after.push(After::Start(i.id.clone()));
                        }
                        Request::Stop => {
                            i.state_reason = Some(("Client.UserInitiatedShutdown".into(), "Client.UserInitiatedShutdown: User initiated shutdown".into()));
                            i.state_transition_reason = user_initiated(now);
                            after.push(After::Stop(i.id.clone(), force));
                        }
                        Request::Terminate => {
                            i.state_reason = Some(("Client.UserInitiatedShutdown".into(), "Client.UserInitiatedShutdown: User initiated shutdown".into()));
                            i.state_transition_reason = user_initiated(now);
                            after.push(After::Destroy(i.id.clone(), kept_volumes(&i)));
                        }
                        Request::Reboot => {}
                    }
                    i.touch();
                    self.save_instance(tx.as_mut(), Some(&before), &i)?;
                }
                RequestOutcome::Act => after.push(After::Reboot(i.id.clone())),
                RequestOutcome::AlreadyThere => {
                    // A forced stop of an instance that is already stopping
                    // escalates; everything else is a no-op.
                    if req == Request::Stop && force && i.state == InstanceState::Stopping {
                        after.push(After::Stop(i.id.clone(), true));
                    }
                }
                RequestOutcome::Illegal => unreachable!("checked above"),
            }
            changes.push(StateChange { id: i.id.clone(), previous, current: i.state });
        }
        tx.commit()?;
        // Before the runtime acts: a starting instance's port must find its
        // policy in place, and a terminating one leaves its groups now.
        self.sync_network(&vpcs);
        for a in after {
            self.act(a);
        }
        Ok(changes)
    }

    pub fn start_instances(&self, ctx: &Ctx, ids: &[InstanceId]) -> Result<Vec<StateChange>> {
        let tx = self.store.read()?;
        let instances = self.load_instances(tx.as_ref(), ctx, ids)?;
        let demands: Vec<(u32, u64)> = instances
            .iter()
            .filter(|i| i.state == InstanceState::Stopped)
            .filter_map(|i| i.itype().map(|t| (t.vcpus, t.memory_mib)))
            .collect();
        drop(tx);
        self.runtime.admit(&demands).map_err(|e| match e {
            RuntimeError::Capacity(m) => Error::InsufficientInstanceCapacity(m),
            RuntimeError::Failed(m) => Error::internal(m),
        })?;
        self.change_state(ctx, ids, Request::Start, false)
    }

    pub fn stop_instances(&self, ctx: &Ctx, ids: &[InstanceId], force: bool) -> Result<Vec<StateChange>> {
        self.change_state(ctx, ids, Request::Stop, force)
    }

    pub fn reboot_instances(&self, ctx: &Ctx, ids: &[InstanceId]) -> Result<()> {
        self.change_state(ctx, ids, Request::Reboot, false).map(|_| ())
    }

    pub fn terminate_instances(&self, ctx: &Ctx, ids: &[InstanceId]) -> Result<Vec<StateChange>> {
        self.change_state(ctx, ids, Request::Terminate, false)
    }

    /// Applies what the runtime reports. Called from the runtime's event sink.
    pub fn apply_observation(&self, id: &InstanceId, obs: Observation) -> Result<()> {
        self.apply_observations(vec![(id.clone(), obs)])
    }

    /// Applies a batch of runtime reports in one transaction, in order. Under
    /// load reports arrive together, and one commit for all of them costs what
    /// one commit for each would cost once.
    pub fn apply_observations(&self, batch: Vec<(InstanceId, Observation)>) -> Result<()> {
        let mut tx = self.store.write()?;
        let mut destroy = Vec::new();
        let mut moves = Vec::new();
        for (id, obs) in batch {
            if let Some(m) = self.observe_in(tx.as_mut(), &id, &obs)? {
                if m.destroy {
                    destroy.push((id.clone(), m.keep.clone()));
                }
                moves.push((id, m));
            }
        }
        tx.commit()?;
        let leaving: Vec<InstanceId> = moves.iter().filter(|(_, m)| !network::holds_interface(m.to)).map(|(id, _)| id.clone()).collect();
        if !leaving.is_empty() {
            // An instance the guest shut down for good leaves its groups.
            let vpcs: Vec<VpcId> = {
                let tx = self.store.read()?;
                leaving.iter().filter_map(|id| tx.load::<Instance>(id.as_str()).ok().flatten()).map(|i| i.vpc_id).collect()
            };
            self.sync_network(&vpcs);
        }
        for (id, m) in moves {
            tracing::info!(instance = %id, from = m.from.name(), to = m.to.name(), "instance state");
        }
        for (id, keep) in destroy {
            self.act(After::Destroy(id, keep));
        }
        Ok(())
    }

    fn observe_in(&self, tx: &mut dyn WriteTx, id: &InstanceId, obs: &Observation) -> Result<Option<Moved>> {
        let Some(mut inst) = tx.load::<Instance>(id.as_str())? else {
            return Ok(None);
        };
        let before = inst.clone();
        let outcome = lifecycle::on_observation(inst.state, obs, inst.shutdown_behavior);
        let (next, destroy) = match outcome {
            ObservationOutcome::Ignore => return Ok(None),
            ObservationOutcome::Move(s) => (s, false),
            ObservationOutcome::MoveAndDestroy(s) => (s, true),
        };
        let was = inst.state;
        inst.state = next;
        let now = self.now();
        match (obs, next) {
            (Observation::Failed(why), _) => {
                tracing::warn!(instance = %id, reason = %why, "instance failed");
                inst.state_reason = Some(("Server.InternalError".into(), "Server.InternalError: Internal error on launch".into()));
                inst.state_transition_reason = format!("Server.InternalError ({why})");
            }
            (_, InstanceState::Running) => {
                inst.state_reason = None;
            }
            (Observation::Stopped | Observation::Gone, InstanceState::Stopped | InstanceState::ShuttingDown) if was == InstanceState::Running || was == InstanceState::Pending => {
                inst.state_reason = Some(("Client.InstanceInitiatedShutdown".into(), "Client.InstanceInitiatedShutdown: Instance initiated shutdown".into()));
                inst.state_transition_reason = format!("Client.InstanceInitiatedShutdown ({})", now.iso8601());
            }
            _ => {}
        }
        // AWS releases an auto-assigned public address when an instance stops
        // or terminates; an Elastic IP stays with a stopped instance.
        if matches!(next, InstanceState::Stopped | InstanceState::Terminated) {
            if let Some(ip) = inst.public_ip.take() {
                self.release_public_ip(tx, ip)?;
            }
        }
        if next == InstanceState::Terminated {
            inst.terminated_at = Some(now);
            if let Some(link) = inst.eip.take() {
                if let Some(mut addr) = tx.load::<Address>(link.allocation_id.as_str())? {
                    addr.association = None;
                    tx.save(&addr)?;
                }
            }
        }
        inst.touch();
        self.save_instance(tx, Some(&before), &inst)?;
        Ok(Some(Moved { from: was, to: next, destroy, keep: kept_volumes(&inst) }))
    }

    pub fn get_console_output(&self, ctx: &Ctx, id: &InstanceId) -> Result<ConsoleOutput> {
        let tx = self.store.read()?;
        let inst = self.load_instance(tx.as_ref(), ctx, id)?;
        drop(tx);
        let output = if inst.state == InstanceState::Terminated {
            Vec::new()
        } else {
            self.runtime.console_output(&inst.id).unwrap_or_default()
        };
        Ok(ConsoleOutput { instance_id: inst.id, timestamp: self.now(), output })
    }

    pub fn describe_instance_attribute(&self, ctx: &Ctx, id: &InstanceId) -> Result<Instance> {
        let tx = self.store.read()?;
        self.load_instance(tx.as_ref(), ctx, id)
    }

    pub fn modify_instance_attribute(&self, ctx: &Ctx, id: &InstanceId, change: AttributeChange) -> Result<()> {
        let mut tx = self.begin(ctx)?;
        let mut inst = self.load_instance(tx.as_ref(), ctx, id)?;
        let before = inst.clone();
        if inst.state == InstanceState::Terminated {
            return Err(Error::IncorrectInstanceStateMsg(format!("The instance '{id}' is terminated.")));
        }
        let must_be_stopped = |inst: &Instance| -> Result<()> {
            if inst.state != InstanceState::Stopped {
                return Err(Error::IncorrectInstanceStateMsg(format!("The instance '{}' is not in the 'stopped' state.", inst.id)));
            }
            Ok(())
        };
        match change {
            AttributeChange::InstanceType(t) => {
                must_be_stopped(&inst)?;
                if instance_types::lookup(&t).is_none() {
                    return Err(Error::invalid_value("instanceType", &t, "This is not a valid instance type."));
                }
                inst.instance_type = t;
            }
            AttributeChange::UserData(raw) => {
                must_be_stopped(&inst)?;
                if raw.len() > MAX_USER_DATA {
                    return Err(Error::InvalidParameterValue(format!("User data is limited to {MAX_USER_DATA} bytes.")));
                }
                inst.user_data = if raw.is_empty() { None } else { Some(base64::engine::general_purpose::STANDARD.encode(raw)) };
            }
            AttributeChange::EbsOptimized(v) => {
                must_be_stopped(&inst)?;
                inst.ebs_optimized = v;
            }
            AttributeChange::DisableApiTermination(v) => inst.disable_api_termination = v,
            AttributeChange::DisableApiStop(v) => inst.disable_api_stop = v,
            AttributeChange::ShutdownBehavior(s) => {
                inst.shutdown_behavior = match s.as_str() {
                    "stop" => ShutdownBehavior::Stop,
                    "terminate" => ShutdownBehavior::Terminate,
                    other => return Err(Error::invalid_value("InstanceInitiatedShutdownBehavior", other, "Valid values are stop and terminate.")),
                };
            }
            AttributeChange::SourceDestCheck(v) => inst.source_dest_check = v,
            AttributeChange::Groups(ids) => {
                if ids.is_empty() {
                    return Err(Error::MissingParameter("GroupId".into()));
                }
                let vpc = self.load_vpc(tx.as_ref(), ctx, &inst.vpc_id)?;
                inst.security_groups = self.resolve_groups(tx.as_ref(), ctx, &vpc, &inst.subnet_id, &ids, &[])?;
            }
            AttributeChange::DeleteOnTermination(list) => {
                for (dev, v) in list {
                    let d = inst
                        .block_devices
                        .iter_mut()
                        .find(|d| d.device_name == dev)
                        .ok_or_else(|| Error::InvalidParameterValue(format!("The instance has no device named {dev}")))?;
                    d.delete_on_termination = v;
                }
            }
        }
        inst.touch();
        self.save_instance(tx.as_mut(), Some(&before), &inst)?;
        tx.commit()?;
        if inst.security_groups != before.security_groups {
            // Takes effect on the running instance at once.
            self.sync_network([&inst.vpc_id]);
        }
        Ok(())
    }

    /// Saves an instance and keeps the indexes that describe it in step: the
    /// subnet's address index and count, and the region's active vCPUs.
    pub(crate) fn save_instance(&self, tx: &mut dyn WriteTx, before: Option<&Instance>, after: &Instance) -> Result<()> {
        let vcpus = |i: &Instance| if i.state.is_active() { i.itype().map(|t| t.vcpus as i64).unwrap_or(0) } else { 0 };
        let delta = vcpus(after) - before.map(vcpus).unwrap_or(0);
        if delta != 0 {
            let key = vcpu_key(&after.owner, &after.region);
            let n: i64 = tx.meta_get(&key)?.and_then(|v| v.parse().ok()).unwrap_or(0);
            tx.meta_put(&key, &(n + delta).max(0).to_string())?;
        }
        let held_before = before.is_some_and(|b| b.state.holds_resources());
        if held_before && !after.state.holds_resources() {
            if let Some(b) = before {
                tx.meta_delete(&ip_key(&b.subnet_id, b.private_ip))?;
                adjust_count(tx, &b.subnet_id, -1)?;
            }
        }
        if !held_before && after.state.holds_resources() {
            tx.meta_put(&ip_key(&after.subnet_id, after.private_ip), after.id.as_str())?;
            adjust_count(tx, &after.subnet_id, 1)?;
        }
        tx.save(after)
    }

    /// `ModifyInstanceMetadataOptions`: takes effect on the next request the
    /// instance makes to the metadata service.
    pub fn modify_metadata_options(&self, ctx: &Ctx, id: &InstanceId, req: MetadataOptionsRequest) -> Result<Instance> {
        let mut tx = self.begin(ctx)?;
        let mut inst = self.load_instance(tx.as_ref(), ctx, id)?;
        if inst.state == InstanceState::Terminated {
            return Err(Error::IncorrectInstanceStateMsg(format!("The instance '{id}' is terminated.")));
        }
        let before = inst.clone();
        inst.metadata = apply_metadata_options(inst.metadata.clone(), &req)?;
        inst.touch();
        self.save_instance(tx.as_mut(), Some(&before), &inst)?;
        tx.commit()?;
        Ok(inst)
    }

    /// What the metadata service needs to answer for an instance.
    pub fn metadata_view(&self, id: &str) -> Result<Option<MetadataView>> {
        let tx = self.store.read()?;
        let Some(instance) = tx.load::<Instance>(id)? else { return Ok(None) };
        let subnet = tx.load::<Subnet>(instance.subnet_id.as_str())?;
        let vpc = tx.load::<Vpc>(instance.vpc_id.as_str())?;
        let key = match &instance.key_name {
            Some(k) => tx.list_of::<KeyPair>(&instance.owner, &instance.region)?.into_iter().find(|kp| &kp.name == k),
            None => None,
        };
        Ok(Some(MetadataView { instance, subnet, vpc, key }))
    }

    /// Every instance the runtime should still hold something for: all but
    /// the terminated.
    pub fn live_instance_ids(&self) -> Result<Vec<InstanceId>> {
        Ok(self.store.read()?.list_all_of::<Instance>()?.into_iter().filter(|i| i.state.holds_resources()).map(|i| i.id).collect())
    }

    /// Forgets terminated instances once their retention has passed.
    pub fn sweep_terminated(&self) -> Result<usize> {
        let cutoff = self.now().plus_secs(-self.config.terminated_retention_secs);
        let mut tx = self.store.write()?;
        let mut n = 0;
        for i in tx.list_all_of::<Instance>()? {
            if i.state == InstanceState::Terminated && i.terminated_at.is_some_and(|t| t <= cutoff) {
                tx.remove(&i)?;
                n += 1;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// After a restart: bring every instance back in line with what the runtime
    /// can show, repeating whatever request may not have been carried out.
    pub fn recover(&self) -> Result<()> {
        let all: Vec<Instance> = self.store.read()?.list_all_of::<Instance>()?;
        for i in all {
            let seen = self.runtime.observe(&i.id);
            match i.state {
                InstanceState::Pending => match seen {
                    Some(Observation::Running) => self.apply_observation(&i.id, Observation::Running)?,
                    _ => self.act(After::Start(i.id.clone())),
                },
                InstanceState::Running => {
                    if seen != Some(Observation::Running) {
                        // The instance should be running: boot it again.
                        self.act(After::Start(i.id.clone()));
                    }
                }
                InstanceState::Stopping => match seen {
                    Some(Observation::Running) => self.act(After::Stop(i.id.clone(), true)),
                    _ => self.apply_observation(&i.id, Observation::Stopped)?,
                },
                InstanceState::ShuttingDown => self.act(After::Destroy(i.id.clone(), kept_volumes(&i))),
                InstanceState::Stopped => {
                    if seen == Some(Observation::Running) {
                        self.act(After::Stop(i.id.clone(), true));
                    }
                }
                InstanceState::Terminated => {
                    if seen.is_some() && seen != Some(Observation::Gone) {
                        self.act(After::Destroy(i.id.clone(), kept_volumes(&i)));
                    }
                }
            }
        }
        Ok(())
    }
}

fn vcpu_key(account: &AccountId, region: &Region) -> String {
    format!("vcpus/{account}/{region}")
}

/// vCPUs of the scope's instances that count against the quota.
fn active_vcpus(tx: &dyn ReadTx, ctx: &Ctx) -> Result<u32> {
    Ok(tx.meta_get(&vcpu_key(&ctx.account, &ctx.region))?.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// The runtime's view of an instance, from the instance and what it refers to.
fn spec_of(inst: &Instance, itype: &InstanceType, subnet: &Subnet, image_builtin: Option<String>, ssh_public_key: Option<String>) -> Result<InstanceSpec> {
    Ok(InstanceSpec {
        id: inst.id.clone(),
        instance_type: inst.instance_type.clone(),
        vcpus: itype.vcpus,
        memory_mib: itype.memory_mib,
        image_id: inst.image_id.clone(),
        image_builtin,
        volumes: inst
            .block_devices
            .iter()
            .map(|d| VolumeSpec {
                id: d.volume_id.clone(),
                device_name: d.device_name.clone(),
                size_gib: d.size_gib,
                root: d.root,
                delete_on_termination: d.delete_on_termination,
            })
            .collect(),
        network: NetworkSpec {
            vpc_id: inst.vpc_id.clone(),
            mac: inst.mac.clone(),
            private_ip: inst.private_ip,
            prefix_len: subnet.cidr.prefix(),
            gateway: subnet.gateway(),
            public_ip: inst.effective_public_ip(),
        },
        user_data: match &inst.user_data {
            Some(u) => Some(decode_user_data(u)?),
            None => None,
        },
        ssh_public_key,
        hostname: inst.private_dns_name(),
    })
}

/// The volumes that outlive the instance (DeleteOnTermination=false).
fn kept_volumes(i: &Instance) -> Vec<VolumeId> {
    i.block_devices.iter().filter(|d| !d.delete_on_termination).map(|d| d.volume_id.clone()).collect()
}

/// The guard rails a request has beyond the state table.
fn on_request_checked(i: &Instance, req: Request) -> Result<RequestOutcome> {
    let outcome = lifecycle::on_request(i.state, req);
    if outcome == RequestOutcome::Move(InstanceState::ShuttingDown) && i.disable_api_termination {
        return Err(Error::OperationNotPermitted(format!(
            "The instance '{}' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.",
            i.id
        )));
    }
    if req == Request::Stop && outcome == RequestOutcome::Move(InstanceState::Stopping) && i.disable_api_stop {
        return Err(Error::OperationNotPermitted(format!(
            "The instance '{}' may not be stopped. Modify its 'disableApiStop' instance attribute and try again.",
            i.id
        )));
    }
    Ok(outcome)
}

/// `(status, reachability)` of both status checks: fine once running.
pub fn status_of(i: &Instance) -> (&'static str, &'static str) {
    match i.state {
        InstanceState::Running => ("ok", "passed"),
        _ => ("not-applicable", "not-applicable"),
    }
}

/// Groups instances into their reservations, in order of first appearance.
pub fn group_reservations(instances: Vec<Arc<Instance>>, owner: &AccountId) -> Vec<Reservation> {
    let mut out: Vec<Reservation> = Vec::new();
    for i in instances {
        match out.iter_mut().find(|r| r.id == i.reservation_id) {
            Some(r) => r.instances.push(i),
            None => out.push(Reservation { id: i.reservation_id.clone(), owner: owner.clone(), instances: vec![i] }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_limits() {
        let ok = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; MAX_USER_DATA]);
        assert_eq!(decode_user_data(&ok).map(|v| v.len()).ok(), Some(MAX_USER_DATA));
        let big = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; MAX_USER_DATA + 1]);
        assert!(decode_user_data(&big).is_err());
        assert!(decode_user_data("***").is_err());
        assert!(decode_user_data("aGVs\nbG8=").is_ok(), "line breaks are tolerated");
    }

    #[test]
    fn device_names() {
        for ok in ["/dev/sdb", "/dev/xvdb", "/dev/sdf1", "/dev/xvda"] {
            assert!(valid_device_name(ok), "{ok}");
        }
        for bad in ["sdb", "/dev/hda", "/dev/sd", "/dev/sdB", "/dev/xvdbzzz"] {
            assert!(!valid_device_name(bad), "{bad}");
        }
    }

    #[test]
    fn macs_are_local_unicast() {
        let m = random_mac();
        assert_eq!(m.len(), 17);
        assert!(m.starts_with("02:"));
    }
}
