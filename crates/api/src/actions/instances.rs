//! Instances: RunInstances, the Describe actions, lifecycle actions,
//! attributes and the console.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use strato_core::error::Error;
use strato_core::ids::{InstanceId, SecurityGroupId, SubnetId};
use strato_core::instance_types;
use strato_core::lifecycle::InstanceState;
use strato_core::resources::instances::{
    status_of, AttributeChange, AttributeName, BlockDeviceMappingRequest, DescribeInstanceStatus, DescribeInstances,
    EbsRequest, Instance, MetadataOptionsRequest, NetworkInterfaceRequest, Reservation, RunInstances, StateChange,
};

use super::common::{instance_state, next_token, return_true, tag_set};
use crate::query::Scope;
use super::network_interfaces::{render_interface, Shape};
use crate::xml::Xml;
use crate::{ApiError, Call};

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

pub(crate) fn group_set(x: &mut Xml, i: &Instance) {
    x.list("groupSet", i.security_groups.iter(), |x, g| {
        x.leaf("groupId", &g.id);
        x.leaf("groupName", &g.name);
    });
}

fn block_device_mapping(x: &mut Xml, i: &Instance) {
    let devices = if i.state == InstanceState::Terminated { &[][..] } else { &i.block_devices[..] };
    x.list("blockDeviceMapping", devices.iter(), |x, d| {
        x.leaf("deviceName", &d.device_name);
        x.node("ebs", |x| {
            x.leaf("volumeId", &d.volume_id);
            x.leaf("status", "attached");
            x.leaf("attachTime", d.attach_time.iso());
            x.bool("deleteOnTermination", d.delete_on_termination);
        });
    });
}

pub(crate) fn association(x: &mut Xml, i: &Instance) {
    if let Some(ip) = i.effective_public_ip() {
        x.node("association", |x| {
            x.leaf("publicIp", ip);
            x.opt("publicDnsName", i.public_dns_name());
            x.leaf("ipOwnerId", if i.eip.is_some() { i.owner.as_str() } else { "amazon" });
        });
    }
}

/// `metadataOptions` of an instance, as DescribeInstances and
/// ModifyInstanceMetadataOptions both write it.
fn metadata_options(x: &mut Xml, i: &Instance) {
    x.leaf("state", "applied");
    x.leaf("httpTokens", &i.metadata.http_tokens);
    x.leaf("httpPutResponseHopLimit", i.metadata.hop_limit);
    x.leaf("httpEndpoint", &i.metadata.http_endpoint);
    x.leaf("httpProtocolIpv6", &i.metadata.http_protocol_ipv6);
    x.leaf("instanceMetadataTags", &i.metadata.instance_metadata_tags);
}

pub fn render_instance(x: &mut Xml, i: &Instance) {
    let terminated = i.state == InstanceState::Terminated;
    x.leaf("instanceId", &i.id);
    x.leaf("imageId", &i.image_id);
    instance_state(x, "instanceState", i.state);
    x.leaf("privateDnsName", if terminated { String::new() } else { i.private_dns_name() });
    x.leaf("dnsName", i.public_dns_name().unwrap_or_default());
    x.leaf("reason", &i.state_transition_reason);
    x.opt("keyName", i.key_name.as_ref());
    x.leaf("amiLaunchIndex", i.launch_index);
    x.list("productCodes", Vec::<()>::new(), |_, _| {});
    x.leaf("instanceType", &i.instance_type);
    x.leaf("launchTime", i.launch_time.iso());
    x.node("placement", |x| {
        x.leaf("availabilityZone", &i.availability_zone);
        x.leaf("groupName", "");
        x.leaf("tenancy", &i.tenancy);
    });
    x.node("monitoring", |x| x.leaf("state", if i.monitoring { "enabled" } else { "disabled" }));
    if !terminated {
        x.leaf("subnetId", &i.subnet_id);
        x.leaf("vpcId", &i.vpc_id);
        x.leaf("privateIpAddress", i.private_ip);
        x.opt("ipAddress", i.effective_public_ip());
    }
    x.bool("sourceDestCheck", i.source_dest_check);
    group_set(x, i);
    if let Some((code, message)) = &i.state_reason {
        x.node("stateReason", |x| {
            x.leaf("code", code);
            x.leaf("message", message);
        });
    }
    x.leaf("architecture", "x86_64");
    x.leaf("rootDeviceType", "ebs");
    x.leaf("rootDeviceName", &i.root_device_name);
    block_device_mapping(x, i);
    x.leaf("virtualizationType", "hvm");
    x.opt("clientToken", i.client_token.as_ref());
    tag_set(x, &i.tags);
    x.leaf("hypervisor", "xen");
    let interfaces = if terminated { vec![] } else { vec![i] };
    x.list("networkInterfaceSet", interfaces, |x, i| render_interface(x, i, Shape::InInstance));
    x.bool("ebsOptimized", i.ebs_optimized);
    x.bool("enaSupport", true);
    if let Some(t) = instance_types::lookup(&i.instance_type) {
        x.node("cpuOptions", |x| {
            x.leaf("coreCount", t.cores());
            x.leaf("threadsPerCore", t.threads_per_core());
        });
    }
    x.node("capacityReservationSpecification", |x| x.leaf("capacityReservationPreference", "open"));
    x.node("hibernationOptions", |x| x.bool("configured", false));
    x.node("metadataOptions", |x| metadata_options(x, i));
    x.node("enclaveOptions", |x| x.bool("enabled", false));
    x.leaf("platformDetails", "Linux/UNIX");
    x.leaf("usageOperation", "RunInstances");
    x.leaf("usageOperationUpdateTime", i.launch_time.iso());
    x.node("privateDnsNameOptions", |x| {
        x.leaf("hostnameType", &i.hostname_type);
        x.bool("enableResourceNameDnsARecord", false);
        x.bool("enableResourceNameDnsAAAARecord", false);
    });
    x.node("maintenanceOptions", |x| x.leaf("autoRecovery", "default"));
    x.leaf("currentInstanceBootMode", "legacy-bios");
}

/// Rendered `<item>` bodies of instances, reused while the instance is the
/// very same decoded value (the store's decode cache hands out the same `Arc`
/// until the stored instance changes). Holding the `Arc` keeps its address
/// from being reused, so pointer equality is a sound version check.
type Fragments = HashMap<InstanceId, (Arc<Instance>, Arc<str>)>;

fn fragments() -> &'static Mutex<Fragments> {
    static F: OnceLock<Mutex<Fragments>> = OnceLock::new();
    F.get_or_init(|| Mutex::new(HashMap::new()))
}

const FRAGMENT_LIMIT: usize = 100_000;

fn rendered(cache: &mut Fragments, i: &Arc<Instance>) -> Arc<str> {
    if let Some((held, xml)) = cache.get(&i.id) {
        if Arc::ptr_eq(held, i) {
            return xml.clone();
        }
    }
    let mut x = Xml::fragment();
    render_instance(&mut x, i);
    let xml: Arc<str> = Arc::from(x.into_string());
    if cache.len() > FRAGMENT_LIMIT {
        cache.clear();
    }
    cache.insert(i.id.clone(), (i.clone(), xml.clone()));
    xml
}

fn render_reservations(x: &mut Xml, reservations: &[Reservation]) {
    let n: usize = reservations.iter().map(|r| r.instances.len()).sum();
    x.reserve(n * 4096);
    let mut guard = fragments().lock();
    x.list("reservationSet", reservations.iter(), |x, r| {
        x.leaf("reservationId", &r.id);
        x.leaf("ownerId", &r.owner);
        x.list("groupSet", Vec::<()>::new(), |_, _| {});
        x.list("instancesSet", r.instances.iter(), |x, i| match guard.as_mut() {
            Ok(cache) => x.raw(&rendered(cache, i)),
            Err(_) => render_instance(x, i),
        });
    });
}

fn render_reservation(x: &mut Xml, r: &Reservation) {
    x.leaf("reservationId", &r.id);
    x.leaf("ownerId", &r.owner);
    x.list("groupSet", Vec::<()>::new(), |_, _| {});
    x.list("instancesSet", r.instances.iter(), |x, i| render_instance(x, i));
}

fn parse_ebs(s: &Scope<'_>) -> Result<EbsRequest, Error> {
    let _ = s.int("Throughput")?;
    let _ = s.string("KmsKeyId");
    Ok(EbsRequest {
        volume_size: s.int("VolumeSize")?,
        volume_type: s.string("VolumeType"),
        delete_on_termination: s.bool("DeleteOnTermination")?,
        iops: s.int("Iops")?,
        snapshot_id: s.string("SnapshotId"),
        encrypted: s.bool("Encrypted")?,
    })
}

fn unsupported_if(cond: bool, what: &str) -> Result<(), Error> {
    if cond {
        Err(Error::Unsupported(format!("{what} is not supported by Strato yet")))
    } else {
        Ok(())
    }
}

fn parse_run(p: &Scope<'_>) -> Result<RunInstances, Error> {
    let placement = p.nested("Placement");
    let group_name = placement.string("GroupName").unwrap_or_default();
    unsupported_if(!group_name.is_empty(), "Placement groups")?;
    let metadata = p.nested("MetadataOptions");
    let mut req = RunInstances {
        image_id: p.id("ImageId", strato_core::ids::ImageId::parse)?,
        instance_type: p.string("InstanceType"),
        min_count: p.int("MinCount")?,
        max_count: p.int("MaxCount")?,
        key_name: p.string("KeyName").filter(|k| !k.is_empty()),
        security_group_ids: p.ids("SecurityGroupId", SecurityGroupId::parse)?,
        security_groups: p.strings("SecurityGroup")?,
        subnet_id: p.id("SubnetId", SubnetId::parse)?,
        availability_zone: placement.string("AvailabilityZone").filter(|z| !z.is_empty()),
        tenancy: placement.string("Tenancy"),
        private_ip: p.string("PrivateIpAddress"),
        user_data: p.string("UserData"),
        tag_specs: p.tag_specs()?,
        block_device_mappings: p
            .structs("BlockDeviceMapping")?
            .into_iter()
            .map(|m| {
                Ok(BlockDeviceMappingRequest {
                    device_name: m.string("DeviceName"),
                    ebs: if m.has("Ebs") { Some(parse_ebs(&m.nested("Ebs"))?) } else { None },
                    no_device: m.string("NoDevice").is_some(),
                    virtual_name: m.string("VirtualName"),
                })
            })
            .collect::<Result<_, Error>>()?,
        metadata: MetadataOptionsRequest {
            http_tokens: metadata.string("HttpTokens"),
            hop_limit: metadata.int("HttpPutResponseHopLimit")?,
            http_endpoint: metadata.string("HttpEndpoint"),
            http_protocol_ipv6: metadata.string("HttpProtocolIpv6"),
            instance_metadata_tags: metadata.string("InstanceMetadataTags"),
        },
        shutdown_behavior: p.string("InstanceInitiatedShutdownBehavior"),
        disable_api_termination: p.bool("DisableApiTermination")?,
        disable_api_stop: p.bool("DisableApiStop")?,
        ebs_optimized: p.bool("EbsOptimized")?,
        monitoring: p.nested("Monitoring").bool("Enabled")?,
        network_interfaces: p
            .structs("NetworkInterface")?
            .into_iter()
            .map(|n| {
                let _ = n.string("Description");
                Ok(NetworkInterfaceRequest {
                    device_index: n.int("DeviceIndex")?,
                    subnet_id: n.id("SubnetId", SubnetId::parse)?,
                    associate_public_ip: n.bool("AssociatePublicIpAddress")?,
                    groups: n.ids("SecurityGroupId", SecurityGroupId::parse)?,
                    private_ip: n.string("PrivateIpAddress"),
                    delete_on_termination: n.bool("DeleteOnTermination")?,
                    network_interface_id: n.string("NetworkInterfaceId"),
                })
            })
            .collect::<Result<_, Error>>()?,
        client_token: p.string("ClientToken").filter(|t| !t.is_empty()),
    };
    // Accepted and without effect here, as they have none on a Strato host.
    let _ = p.string("AdditionalInfo");
    let _ = p.nested("CreditSpecification").string("CpuCredits");
    let _ = p.nested("MaintenanceOptions").string("AutoRecovery");
    let _ = p.nested("CpuOptions").int("CoreCount")?;
    let _ = p.nested("CpuOptions").int("ThreadsPerCore")?;
    let dns = p.nested("PrivateDnsNameOptions");
    let _ = dns.string("HostnameType");
    let _ = dns.bool("EnableResourceNameDnsARecord")?;
    let _ = dns.bool("EnableResourceNameDnsAAAARecord")?;
    unsupported_if(p.has("LaunchTemplate"), "Launching from a launch template")?;
    unsupported_if(p.has("InstanceMarketOptions"), "Spot instances")?;
    unsupported_if(p.has("IamInstanceProfile"), "IAM instance profiles")?;
    unsupported_if(p.string("KernelId").is_some() || p.string("RamdiskId").is_some(), "Choosing a kernel or ramdisk")?;
    unsupported_if(p.nested("HibernationOptions").bool("Configured")? == Some(true), "Hibernation")?;
    unsupported_if(p.nested("EnclaveOptions").bool("Enabled")? == Some(true), "Nitro Enclaves")?;
    unsupported_if(p.int("Ipv6AddressCount")?.unwrap_or(0) > 0 || p.has("Ipv6Address"), "IPv6 addressing")?;
    if req.user_data.as_deref() == Some("") {
        req.user_data = None;
    }
    Ok(req)
}

pub fn run_instances(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = parse_run(&c.p)?;
    c.ready()?;
    let r = c.ec2.run_instances(&c.ctx, req)?;
    render_reservation(&mut c.xml, &r);
    Ok(())
}

pub fn describe_instances(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeInstances { instance_ids: c.p.ids("InstanceId", InstanceId::parse)?, filters: c.p.filters()?, page: c.p.page()? };
    let _ = c.p.bool("IncludeManagedResources")?;
    c.ready()?;
    let (reservations, next) = c.ec2.describe_instances(&c.ctx, req)?;
    render_reservations(&mut c.xml, &reservations);
    next_token(&mut c.xml, next);
    Ok(())
}

pub fn describe_instance_status(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeInstanceStatus {
        instance_ids: c.p.ids("InstanceId", InstanceId::parse)?,
        filters: c.p.filters()?,
        include_all: c.p.bool("IncludeAllInstances")?.unwrap_or(false),
        page: c.p.page()?,
    };
    c.ready()?;
    let (instances, next) = c.ec2.describe_instance_status(&c.ctx, req)?;
    c.xml.list("instanceStatusSet", instances.iter(), |x, i| {
        let (status, reach) = status_of(i);
        x.leaf("instanceId", &i.id);
        x.leaf("availabilityZone", &i.availability_zone);
        x.list("eventsSet", Vec::<()>::new(), |_, _| {});
        instance_state(x, "instanceState", i.state);
        for tag in ["systemStatus", "instanceStatus", "attachedEbsStatus"] {
            x.node(tag, |x| {
                x.leaf("status", status);
                x.list("details", [reach], |x, r| {
                    x.leaf("name", "reachability");
                    x.leaf("status", r);
                });
            });
        }
    });
    next_token(&mut c.xml, next);
    Ok(())
}

fn render_changes(x: &mut Xml, changes: &[StateChange]) {
    x.list("instancesSet", changes.iter(), |x, ch| {
        x.leaf("instanceId", &ch.id);
        instance_state(x, "currentState", ch.current);
        instance_state(x, "previousState", ch.previous);
    });
}

fn instance_ids(p: &Scope<'_>) -> Result<Vec<InstanceId>, Error> {
    let ids = p.ids("InstanceId", InstanceId::parse)?;
    if ids.is_empty() {
        return Err(Error::MissingParameter("InstanceId".into()));
    }
    Ok(ids)
}

pub fn start_instances(c: &mut Call<'_>) -> Result<(), ApiError> {
    let ids = instance_ids(&c.p)?;
    let _ = c.p.string("AdditionalInfo");
    c.ready()?;
    let changes = c.ec2.start_instances(&c.ctx, &ids)?;
    render_changes(&mut c.xml, &changes);
    Ok(())
}

pub fn stop_instances(c: &mut Call<'_>) -> Result<(), ApiError> {
    let ids = instance_ids(&c.p)?;
    let force = c.p.bool("Force")?.unwrap_or(false);
    unsupported_if(c.p.bool("Hibernate")? == Some(true), "Hibernation")?;
    let _ = c.p.bool("SkipOsShutdown")?;
    c.ready()?;
    let changes = c.ec2.stop_instances(&c.ctx, &ids, force)?;
    render_changes(&mut c.xml, &changes);
    Ok(())
}

pub fn reboot_instances(c: &mut Call<'_>) -> Result<(), ApiError> {
    let ids = instance_ids(&c.p)?;
    c.ready()?;
    c.ec2.reboot_instances(&c.ctx, &ids)?;
    return_true(&mut c.xml);
    Ok(())
}

pub fn terminate_instances(c: &mut Call<'_>) -> Result<(), ApiError> {
    let ids = instance_ids(&c.p)?;
    let _ = c.p.bool("SkipOsShutdown")?;
    c.ready()?;
    let changes = c.ec2.terminate_instances(&c.ctx, &ids)?;
    render_changes(&mut c.xml, &changes);
    Ok(())
}

pub fn get_console_output(c: &mut Call<'_>) -> Result<(), ApiError> {
    let id = c.p.required_id("InstanceId", InstanceId::parse)?;
    let _ = c.p.bool("Latest")?;
    c.ready()?;
    let out = c.ec2.get_console_output(&c.ctx, &id)?;
    c.xml.leaf("instanceId", &out.instance_id);
    c.xml.leaf("timestamp", out.timestamp.iso());
    c.xml.leaf("output", b64().encode(&out.output));
    Ok(())
}

fn decode_b64(what: &str, v: &str) -> Result<Vec<u8>, Error> {
    b64().decode(v.trim()).map_err(|_| Error::InvalidParameterValue(format!("Invalid BASE64 encoding of {what}.")))
}

fn parse_change(p: &Scope<'_>) -> Result<AttributeChange, Error> {
    let mut changes: Vec<AttributeChange> = Vec::new();
    let value = |name: &str| p.nested(name).string("Value");
    let bool_value = |name: &str| p.nested(name).bool("Value");
    // The older form: Attribute=<name>&Value=<value>.
    if let Some(attr) = p.string("Attribute") {
        let v = p.required("Value")?;
        let as_bool = |v: &str| match v {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(Error::invalid_value("Value", other, "Expected true or false.")),
        };
        changes.push(match attr.as_str() {
            "instanceType" => AttributeChange::InstanceType(v),
            "userData" => AttributeChange::UserData(decode_b64("user data", &v)?),
            "disableApiTermination" => AttributeChange::DisableApiTermination(as_bool(&v)?),
            "disableApiStop" => AttributeChange::DisableApiStop(as_bool(&v)?),
            "instanceInitiatedShutdownBehavior" => AttributeChange::ShutdownBehavior(v),
            "sourceDestCheck" => AttributeChange::SourceDestCheck(as_bool(&v)?),
            "ebsOptimized" => AttributeChange::EbsOptimized(as_bool(&v)?),
            "groupSet" => AttributeChange::Groups(vec![SecurityGroupId::parse(&v)?]),
            other => {
                return Err(Error::invalid_value("attribute", other, "This attribute cannot be modified (or is not supported by Strato)."))
            }
        });
    }
    if let Some(v) = value("InstanceType") {
        changes.push(AttributeChange::InstanceType(v));
    }
    if let Some(v) = value("UserData") {
        changes.push(AttributeChange::UserData(decode_b64("user data", &v)?));
    }
    if let Some(v) = bool_value("DisableApiTermination")? {
        changes.push(AttributeChange::DisableApiTermination(v));
    }
    if let Some(v) = bool_value("DisableApiStop")? {
        changes.push(AttributeChange::DisableApiStop(v));
    }
    if let Some(v) = value("InstanceInitiatedShutdownBehavior") {
        changes.push(AttributeChange::ShutdownBehavior(v));
    }
    if let Some(v) = bool_value("SourceDestCheck")? {
        changes.push(AttributeChange::SourceDestCheck(v));
    }
    if let Some(v) = bool_value("EbsOptimized")? {
        changes.push(AttributeChange::EbsOptimized(v));
    }
    let groups = p.ids("GroupId", SecurityGroupId::parse)?;
    if !groups.is_empty() {
        changes.push(AttributeChange::Groups(groups));
    }
    let mappings = p.structs("BlockDeviceMapping")?;
    if !mappings.is_empty() {
        let mut list = Vec::new();
        for m in mappings {
            let dev = m.required("DeviceName")?;
            let ebs = m.nested("Ebs");
            let _ = ebs.string("VolumeId");
            let v = ebs.bool("DeleteOnTermination")?.ok_or_else(|| Error::MissingParameter("BlockDeviceMapping.N.Ebs.DeleteOnTermination".into()))?;
            list.push((dev, v));
        }
        changes.push(AttributeChange::DeleteOnTermination(list));
    }
    for unsupported in ["Kernel", "Ramdisk", "SriovNetSupport", "EnaSupport"] {
        if p.has(unsupported) {
            return Err(Error::Unsupported(format!("Modifying {unsupported} is not supported by Strato")));
        }
    }
    match changes.len() {
        0 => Err(Error::MissingParameter("an attribute to modify (for example InstanceType.Value)".into())),
        1 => Ok(changes.remove(0)),
        _ => Err(Error::InvalidParameterCombination("Fields for multiple attribute types specified; modify one attribute per request.".into())),
    }
}

pub fn modify_instance_metadata_options(c: &mut Call<'_>) -> Result<(), ApiError> {
    let id = c.p.required_id("InstanceId", InstanceId::parse)?;
    let req = MetadataOptionsRequest {
        http_tokens: c.p.string("HttpTokens"),
        hop_limit: c.p.int("HttpPutResponseHopLimit")?,
        http_endpoint: c.p.string("HttpEndpoint"),
        http_protocol_ipv6: c.p.string("HttpProtocolIpv6"),
        instance_metadata_tags: c.p.string("InstanceMetadataTags"),
    };
    c.ready()?;
    let i = c.ec2.modify_metadata_options(&c.ctx, &id, req)?;
    c.xml.leaf("instanceId", &i.id);
    c.xml.node("instanceMetadataOptions", |x| metadata_options(x, &i));
    Ok(())
}

pub fn modify_instance_attribute(c: &mut Call<'_>) -> Result<(), ApiError> {
    let id = c.p.required_id("InstanceId", InstanceId::parse)?;
    let change = parse_change(&c.p)?;
    c.ready()?;
    c.ec2.modify_instance_attribute(&c.ctx, &id, change)?;
    return_true(&mut c.xml);
    Ok(())
}

pub fn describe_instance_attribute(c: &mut Call<'_>) -> Result<(), ApiError> {
    let id = c.p.required_id("InstanceId", InstanceId::parse)?;
    let attr = AttributeName::parse(&c.p.required("Attribute")?)?;
    c.ready()?;
    let i = c.ec2.describe_instance_attribute(&c.ctx, &id)?;
    let x = &mut c.xml;
    x.leaf("instanceId", &i.id);
    let tf = |v: bool| if v { "true" } else { "false" };
    match attr {
        AttributeName::InstanceType => x.value("instanceType", &i.instance_type),
        AttributeName::Kernel => x.node("kernel", |_| {}),
        AttributeName::Ramdisk => x.node("ramdisk", |_| {}),
        AttributeName::UserData => match &i.user_data {
            Some(u) => x.value("userData", u),
            None => x.node("userData", |_| {}),
        },
        AttributeName::DisableApiTermination => x.value("disableApiTermination", tf(i.disable_api_termination)),
        AttributeName::DisableApiStop => x.value("disableApiStop", tf(i.disable_api_stop)),
        AttributeName::InstanceInitiatedShutdownBehavior => x.value(
            "instanceInitiatedShutdownBehavior",
            match i.shutdown_behavior {
                strato_core::lifecycle::ShutdownBehavior::Stop => "stop",
                strato_core::lifecycle::ShutdownBehavior::Terminate => "terminate",
            },
        ),
        AttributeName::RootDeviceName => x.value("rootDeviceName", &i.root_device_name),
        AttributeName::BlockDeviceMapping => block_device_mapping(x, &i),
        AttributeName::ProductCodes => x.list("productCodes", Vec::<()>::new(), |_, _| {}),
        AttributeName::SourceDestCheck => x.value("sourceDestCheck", tf(i.source_dest_check)),
        AttributeName::GroupSet => group_set(x, &i),
        AttributeName::EbsOptimized => x.value("ebsOptimized", tf(i.ebs_optimized)),
        AttributeName::SriovNetSupport => x.value("sriovNetSupport", "simple"),
        AttributeName::EnaSupport => x.value("enaSupport", "true"),
        AttributeName::EnclaveOptions => x.node("enclaveOptions", |x| x.bool("enabled", false)),
    }
    Ok(())
}
