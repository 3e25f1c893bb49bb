//! DescribeInstanceTypes, DescribeInstanceTypeOfferings.

use strato_core::instance_types::InstanceType;
use strato_core::resources::instance_types::{DescribeInstanceTypeOfferings, DescribeInstanceTypes};

use super::common::next_token;
use crate::xml::Xml;
use crate::{ApiError, Call};

fn render_type(x: &mut Xml, t: &InstanceType) {
    let (enis, ips) = t.network_limits();
    x.leaf("instanceType", t.name);
    x.bool("currentGeneration", t.current_generation());
    x.bool("freeTierEligible", t.free_tier_eligible());
    x.list("supportedUsageClasses", ["on-demand", "spot"], |x, u| x.leaf("item", u));
    x.list("supportedRootDeviceTypes", ["ebs"], |x, u| x.leaf("item", u));
    x.list("supportedVirtualizationTypes", ["hvm"], |x, u| x.leaf("item", u));
    x.bool("bareMetal", false);
    x.leaf("hypervisor", t.hypervisor());
    x.node("processorInfo", |x| {
        x.list("supportedArchitectures", ["x86_64"], |x, a| x.leaf("item", a));
        x.leaf("sustainedClockSpeedInGhz", t.clock_ghz());
        x.leaf("manufacturer", "Intel");
    });
    x.node("vCpuInfo", |x| {
        x.leaf("defaultVCpus", t.vcpus);
        x.leaf("defaultCores", t.cores());
        x.leaf("defaultThreadsPerCore", t.threads_per_core());
    });
    x.node("memoryInfo", |x| x.leaf("sizeInMiB", t.memory_mib));
    x.bool("instanceStorageSupported", t.storage.is_some());
    if let Some(s) = t.storage {
        x.node("instanceStorageInfo", |x| {
            x.leaf("totalSizeInGB", t.total_storage_gb());
            x.list("disks", [s], |x, s| {
                x.leaf("sizeInGB", s.disk_gb);
                x.leaf("count", s.disks);
                x.leaf("type", s.kind);
            });
            x.leaf("nvmeSupport", if s.nvme { "required" } else { "unsupported" });
            x.leaf("encryptionSupport", if s.nvme { "required" } else { "unsupported" });
        });
    }
    x.node("ebsInfo", |x| {
        x.leaf("ebsOptimizedSupport", if t.hypervisor() == "nitro" { "default" } else { "supported" });
        x.leaf("encryptionSupport", "supported");
        x.leaf("nvmeSupport", if t.hypervisor() == "nitro" { "required" } else { "unsupported" });
    });
    x.node("networkInfo", |x| {
        x.leaf("networkPerformance", t.network);
        x.leaf("maximumNetworkInterfaces", enis);
        x.leaf("maximumNetworkCards", 1);
        x.leaf("defaultNetworkCardIndex", 0);
        x.list("networkCards", [()], |x, _| {
            x.leaf("networkCardIndex", 0);
            x.leaf("networkPerformance", t.network);
            x.leaf("maximumNetworkInterfaces", enis);
        });
        x.leaf("ipv4AddressesPerInterface", ips);
        x.leaf("ipv6AddressesPerInterface", ips);
        x.bool("ipv6Supported", true);
        x.leaf("enaSupport", if t.hypervisor() == "nitro" { "required" } else { "supported" });
        x.bool("efaSupported", false);
        x.bool("encryptionInTransitSupported", false);
    });
    if let Some(g) = t.gpus {
        x.node("gpuInfo", |x| {
            x.list("gpus", [g], |x, g| {
                x.leaf("name", g.name);
                x.leaf("manufacturer", g.manufacturer);
                x.leaf("count", g.count);
                x.node("memoryInfo", |x| x.leaf("sizeInMiB", g.memory_mib));
            });
            x.leaf("totalGpuMemoryInMiB", g.memory_mib * g.count as u64);
        });
    }
    x.node("placementGroupInfo", |x| {
        x.list("supportedStrategies", ["cluster", "partition", "spread"], |x, s| x.leaf("item", s));
    });
    x.bool("hibernationSupported", false);
    x.bool("burstablePerformanceSupported", t.burstable());
    x.bool("dedicatedHostsSupported", false);
    x.bool("autoRecoverySupported", true);
    x.list("supportedBootModes", ["legacy-bios"], |x, m| x.leaf("item", m));
}

pub fn describe_instance_types(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeInstanceTypes { instance_types: c.p.strings("InstanceType")?, filters: c.p.filters()?, page: c.p.page()? };
    c.ready()?;
    let (types, next) = c.ec2.describe_instance_types(&c.ctx, req)?;
    c.xml.list("instanceTypeSet", types, render_type);
    next_token(&mut c.xml, next);
    Ok(())
}

pub fn describe_instance_type_offerings(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeInstanceTypeOfferings { location_type: c.p.string("LocationType"), filters: c.p.filters()?, page: c.p.page()? };
    c.ready()?;
    let (rows, next) = c.ec2.describe_instance_type_offerings(&c.ctx, req)?;
    c.xml.list("instanceTypeOfferingSet", rows, |x, o| {
        x.leaf("instanceType", o.instance_type);
        x.leaf("locationType", &o.location_type);
        x.leaf("location", &o.location);
    });
    next_token(&mut c.xml, next);
    Ok(())
}
