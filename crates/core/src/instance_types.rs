//! The instance type catalogue: one data table of real EC2 families.
//!
//! Figures are AWS's published ones (vCPUs, memory, instance storage, network
//! performance, GPUs); the hourly price is the Linux on-demand price in
//! us-east-1, in USD, kept for metered billing. Strato sizes each VM from the
//! vCPU and memory columns.

use std::borrow::Cow;

use crate::filter::Filterable;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    GeneralPurpose,
    ComputeOptimized,
    MemoryOptimized,
    StorageOptimized,
    AcceleratedComputing,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Storage {
    pub disks: u32,
    pub disk_gb: u32,
    /// `ssd` or `hdd`.
    pub kind: &'static str,
    pub nvme: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gpus {
    pub count: u32,
    pub name: &'static str,
    pub manufacturer: &'static str,
    pub memory_mib: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InstanceType {
    pub name: &'static str,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub network: &'static str,
    pub storage: Option<Storage>,
    pub gpus: Option<Gpus>,
    pub hourly_usd: f64,
}

impl InstanceType {
    pub fn family(&self) -> &'static str {
        self.name.split('.').next().unwrap_or(self.name)
    }

    pub fn category(&self) -> Category {
        match self.family().chars().next() {
            Some('c') => Category::ComputeOptimized,
            Some('r') | Some('x') => Category::MemoryOptimized,
            Some('i') | Some('d') => Category::StorageOptimized,
            Some('g') | Some('p') => Category::AcceleratedComputing,
            _ => Category::GeneralPurpose,
        }
    }

    pub fn current_generation(&self) -> bool {
        !matches!(self.family(), "m1")
    }

    pub fn burstable(&self) -> bool {
        self.family().starts_with('t')
    }

    /// The old Xen families; the rest run on Nitro.
    pub fn hypervisor(&self) -> &'static str {
        match self.family() {
            "t2" | "i3" | "m1" => "xen",
            _ => "nitro",
        }
    }

    pub fn free_tier_eligible(&self) -> bool {
        matches!(self.name, "t2.micro" | "t3.micro")
    }

    pub fn threads_per_core(&self) -> u32 {
        if self.family() == "t2" || self.family() == "m1" || self.vcpus == 1 {
            1
        } else {
            2
        }
    }

    pub fn cores(&self) -> u32 {
        self.vcpus / self.threads_per_core()
    }

    pub fn clock_ghz(&self) -> f64 {
        match self.family() {
            "t2" => 2.3,
            "t3" | "m5" | "r5" => 3.1,
            "c5" => 3.4,
            "m6i" | "c6i" | "r6i" | "x2idn" | "x2iedn" => 3.5,
            "i3" => 2.3,
            "i4i" => 3.5,
            "d3" => 3.1,
            "g5" => 3.3,
            "p4d" => 3.0,
            _ => 2.0,
        }
    }

    pub fn total_storage_gb(&self) -> u64 {
        self.storage.map(|s| s.disks as u64 * s.disk_gb as u64).unwrap_or(0)
    }

    /// ENIs and IPv4 addresses per ENI, by size, as AWS's Nitro tables have them.
    pub fn network_limits(&self) -> (u32, u32) {
        match self.vcpus {
            0..=1 => (2, 2),
            2 => (3, if self.burstable() { 6 } else { 10 }),
            3..=4 => (4, 15),
            5..=16 => (4, 15),
            17..=48 => (8, 30),
            _ => (15, 50),
        }
    }
}

const fn t(name: &'static str, vcpus: u32, memory_mib: u64, network: &'static str, hourly_usd: f64) -> InstanceType {
    InstanceType { name, vcpus, memory_mib, network, storage: None, gpus: None, hourly_usd }
}

#[allow(clippy::too_many_arguments)]
const fn ts(name: &'static str, vcpus: u32, memory_mib: u64, network: &'static str, hourly_usd: f64, disks: u32, disk_gb: u32, kind: &'static str) -> InstanceType {
    InstanceType {
        name, vcpus, memory_mib, network, gpus: None, hourly_usd,
        storage: Some(Storage { disks, disk_gb, kind, nvme: true }),
    }
}

#[allow(clippy::too_many_arguments)]
const fn tg(name: &'static str, vcpus: u32, memory_mib: u64, network: &'static str, hourly_usd: f64, disks: u32, disk_gb: u32, gpus: u32, gpu: &'static str, gpu_mib: u64) -> InstanceType {
    InstanceType {
        name, vcpus, memory_mib, network, hourly_usd,
        storage: Some(Storage { disks, disk_gb, kind: "ssd", nvme: true }),
        gpus: Some(Gpus { count: gpus, name: gpu, manufacturer: "NVIDIA", memory_mib: gpu_mib }),
    }
}

const G: u64 = 1024;

pub static CATALOG: &[InstanceType] = &[
    // General purpose
    InstanceType { name: "m1.small", vcpus: 1, memory_mib: 1740, network: "Low", gpus: None, hourly_usd: 0.044,
        storage: Some(Storage { disks: 1, disk_gb: 160, kind: "hdd", nvme: false }) },
    t("t2.nano", 1, G / 2, "Low to Moderate", 0.0058),
    t("t2.micro", 1, G, "Low to Moderate", 0.0116),
    t("t2.small", 1, 2 * G, "Low to Moderate", 0.023),
    t("t2.medium", 2, 4 * G, "Low to Moderate", 0.0464),
    t("t2.large", 2, 8 * G, "Low to Moderate", 0.0928),
    t("t2.xlarge", 4, 16 * G, "Moderate", 0.1856),
    t("t2.2xlarge", 8, 32 * G, "Moderate", 0.3712),
    t("t3.nano", 2, G / 2, "Up to 5 Gigabit", 0.0052),
    t("t3.micro", 2, G, "Up to 5 Gigabit", 0.0104),
    t("t3.small", 2, 2 * G, "Up to 5 Gigabit", 0.0208),
    t("t3.medium", 2, 4 * G, "Up to 5 Gigabit", 0.0416),
    t("t3.large", 2, 8 * G, "Up to 5 Gigabit", 0.0832),
    t("t3.xlarge", 4, 16 * G, "Up to 5 Gigabit", 0.1664),
    t("t3.2xlarge", 8, 32 * G, "Up to 5 Gigabit", 0.3328),
    t("m5.large", 2, 8 * G, "Up to 10 Gigabit", 0.096),
    t("m5.xlarge", 4, 16 * G, "Up to 10 Gigabit", 0.192),
    t("m5.2xlarge", 8, 32 * G, "Up to 10 Gigabit", 0.384),
    t("m5.4xlarge", 16, 64 * G, "Up to 10 Gigabit", 0.768),
    t("m5.8xlarge", 32, 128 * G, "10 Gigabit", 1.536),
    t("m5.12xlarge", 48, 192 * G, "10 Gigabit", 2.304),
    t("m5.16xlarge", 64, 256 * G, "20 Gigabit", 3.072),
    t("m5.24xlarge", 96, 384 * G, "25 Gigabit", 4.608),
    t("m6i.large", 2, 8 * G, "Up to 12.5 Gigabit", 0.096),
    t("m6i.xlarge", 4, 16 * G, "Up to 12.5 Gigabit", 0.192),
    t("m6i.2xlarge", 8, 32 * G, "Up to 12.5 Gigabit", 0.384),
    t("m6i.4xlarge", 16, 64 * G, "Up to 12.5 Gigabit", 0.768),
    t("m6i.8xlarge", 32, 128 * G, "12.5 Gigabit", 1.536),
    t("m6i.12xlarge", 48, 192 * G, "18.75 Gigabit", 2.304),
    t("m6i.16xlarge", 64, 256 * G, "25 Gigabit", 3.072),
    t("m6i.24xlarge", 96, 384 * G, "37.5 Gigabit", 4.608),
    t("m6i.32xlarge", 128, 512 * G, "50 Gigabit", 6.144),
    // Compute optimized
    t("c5.large", 2, 4 * G, "Up to 10 Gigabit", 0.085),
    t("c5.xlarge", 4, 8 * G, "Up to 10 Gigabit", 0.17),
    t("c5.2xlarge", 8, 16 * G, "Up to 10 Gigabit", 0.34),
    t("c5.4xlarge", 16, 32 * G, "Up to 10 Gigabit", 0.68),
    t("c5.9xlarge", 36, 72 * G, "12 Gigabit", 1.53),
    t("c5.12xlarge", 48, 96 * G, "12 Gigabit", 2.04),
    t("c5.18xlarge", 72, 144 * G, "25 Gigabit", 3.06),
    t("c5.24xlarge", 96, 192 * G, "25 Gigabit", 4.08),
    t("c6i.large", 2, 4 * G, "Up to 12.5 Gigabit", 0.085),
    t("c6i.xlarge", 4, 8 * G, "Up to 12.5 Gigabit", 0.17),
    t("c6i.2xlarge", 8, 16 * G, "Up to 12.5 Gigabit", 0.34),
    t("c6i.4xlarge", 16, 32 * G, "Up to 12.5 Gigabit", 0.68),
    t("c6i.8xlarge", 32, 64 * G, "12.5 Gigabit", 1.36),
    t("c6i.12xlarge", 48, 96 * G, "18.75 Gigabit", 2.04),
    t("c6i.16xlarge", 64, 128 * G, "25 Gigabit", 2.72),
    t("c6i.24xlarge", 96, 192 * G, "37.5 Gigabit", 4.08),
    t("c6i.32xlarge", 128, 256 * G, "50 Gigabit", 5.44),
    // Memory optimized
    t("r5.large", 2, 16 * G, "Up to 10 Gigabit", 0.126),
    t("r5.xlarge", 4, 32 * G, "Up to 10 Gigabit", 0.252),
    t("r5.2xlarge", 8, 64 * G, "Up to 10 Gigabit", 0.504),
    t("r5.4xlarge", 16, 128 * G, "Up to 10 Gigabit", 1.008),
    t("r5.8xlarge", 32, 256 * G, "10 Gigabit", 2.016),
    t("r5.12xlarge", 48, 384 * G, "10 Gigabit", 3.024),
    t("r5.16xlarge", 64, 512 * G, "20 Gigabit", 4.032),
    t("r5.24xlarge", 96, 768 * G, "25 Gigabit", 6.048),
    t("r6i.large", 2, 16 * G, "Up to 12.5 Gigabit", 0.126),
    t("r6i.xlarge", 4, 32 * G, "Up to 12.5 Gigabit", 0.252),
    t("r6i.2xlarge", 8, 64 * G, "Up to 12.5 Gigabit", 0.504),
    t("r6i.4xlarge", 16, 128 * G, "Up to 12.5 Gigabit", 1.008),
    t("r6i.8xlarge", 32, 256 * G, "12.5 Gigabit", 2.016),
    t("r6i.12xlarge", 48, 384 * G, "18.75 Gigabit", 3.024),
    t("r6i.16xlarge", 64, 512 * G, "25 Gigabit", 4.032),
    t("r6i.24xlarge", 96, 768 * G, "37.5 Gigabit", 6.048),
    t("r6i.32xlarge", 128, 1024 * G, "50 Gigabit", 8.064),
    ts("x2idn.16xlarge", 64, 1024 * G, "50 Gigabit", 6.669, 1, 1900, "ssd"),
    ts("x2idn.24xlarge", 96, 1536 * G, "75 Gigabit", 10.0035, 2, 1425, "ssd"),
    ts("x2idn.32xlarge", 128, 2048 * G, "100 Gigabit", 13.338, 2, 1900, "ssd"),
    ts("x2iedn.xlarge", 4, 128 * G, "Up to 25 Gigabit", 0.83363, 1, 118, "ssd"),
    ts("x2iedn.2xlarge", 8, 256 * G, "Up to 25 Gigabit", 1.66725, 1, 237, "ssd"),
    ts("x2iedn.4xlarge", 16, 512 * G, "Up to 25 Gigabit", 3.3345, 1, 475, "ssd"),
    ts("x2iedn.8xlarge", 32, 1024 * G, "25 Gigabit", 6.669, 1, 950, "ssd"),
    ts("x2iedn.16xlarge", 64, 2048 * G, "50 Gigabit", 13.338, 1, 1900, "ssd"),
    ts("x2iedn.24xlarge", 96, 3072 * G, "75 Gigabit", 20.007, 2, 1425, "ssd"),
    ts("x2iedn.32xlarge", 128, 4096 * G, "100 Gigabit", 26.676, 2, 1900, "ssd"),
    // Storage optimized
    ts("i3.large", 2, 15616, "Up to 10 Gigabit", 0.156, 1, 475, "ssd"),
    ts("i3.xlarge", 4, 31232, "Up to 10 Gigabit", 0.312, 1, 950, "ssd"),
    ts("i3.2xlarge", 8, 62464, "Up to 10 Gigabit", 0.624, 1, 1900, "ssd"),
    ts("i3.4xlarge", 16, 124928, "Up to 10 Gigabit", 1.248, 2, 1900, "ssd"),
    ts("i3.8xlarge", 32, 249856, "10 Gigabit", 2.496, 4, 1900, "ssd"),
    ts("i3.16xlarge", 64, 499712, "25 Gigabit", 4.992, 8, 1900, "ssd"),
    ts("i4i.large", 2, 16 * G, "Up to 10 Gigabit", 0.172, 1, 468, "ssd"),
    ts("i4i.xlarge", 4, 32 * G, "Up to 10 Gigabit", 0.343, 1, 937, "ssd"),
    ts("i4i.2xlarge", 8, 64 * G, "Up to 12 Gigabit", 0.686, 1, 1875, "ssd"),
    ts("i4i.4xlarge", 16, 128 * G, "Up to 25 Gigabit", 1.373, 1, 3750, "ssd"),
    ts("i4i.8xlarge", 32, 256 * G, "18.75 Gigabit", 2.746, 2, 3750, "ssd"),
    ts("i4i.16xlarge", 64, 512 * G, "37.5 Gigabit", 5.491, 4, 3750, "ssd"),
    ts("i4i.32xlarge", 128, 1024 * G, "75 Gigabit", 10.982, 8, 3750, "ssd"),
    ts("d3.xlarge", 4, 32 * G, "Up to 15 Gigabit", 0.499, 3, 2000, "hdd"),
    ts("d3.2xlarge", 8, 64 * G, "Up to 15 Gigabit", 0.999, 6, 2000, "hdd"),
    ts("d3.4xlarge", 16, 128 * G, "Up to 15 Gigabit", 1.998, 12, 2000, "hdd"),
    ts("d3.8xlarge", 32, 256 * G, "25 Gigabit", 3.995, 24, 2000, "hdd"),
    // Accelerated computing
    tg("g5.xlarge", 4, 16 * G, "Up to 10 Gigabit", 1.006, 1, 250, 1, "A10G", 24 * G),
    tg("g5.2xlarge", 8, 32 * G, "Up to 10 Gigabit", 1.212, 1, 450, 1, "A10G", 24 * G),
    tg("g5.4xlarge", 16, 64 * G, "Up to 25 Gigabit", 1.624, 1, 600, 1, "A10G", 24 * G),
    tg("g5.8xlarge", 32, 128 * G, "25 Gigabit", 2.448, 1, 900, 1, "A10G", 24 * G),
    tg("g5.12xlarge", 48, 192 * G, "40 Gigabit", 5.672, 1, 3800, 4, "A10G", 24 * G),
    tg("g5.16xlarge", 64, 256 * G, "25 Gigabit", 4.096, 1, 1900, 1, "A10G", 24 * G),
    tg("g5.24xlarge", 96, 384 * G, "50 Gigabit", 8.144, 1, 3800, 4, "A10G", 24 * G),
    tg("g5.48xlarge", 192, 768 * G, "100 Gigabit", 16.288, 2, 3800, 8, "A10G", 24 * G),
    tg("p4d.24xlarge", 96, 1152 * G, "4x 100 Gigabit", 32.7726, 8, 1000, 8, "A100", 40 * G),
];

pub fn lookup(name: &str) -> Option<&'static InstanceType> {
    CATALOG.iter().find(|t| t.name == name)
}

/// The type `RunInstances` uses when none is given, as on AWS.
pub const DEFAULT_TYPE: &str = "m1.small";

fn b(v: bool) -> Cow<'static, str> {
    Cow::Borrowed(if v { "true" } else { "false" })
}

impl Filterable for InstanceType {
    const FILTERS: &'static [&'static str] = &[
        "instance-type", "current-generation", "free-tier-eligible", "burstable-performance-supported",
        "hypervisor", "bare-metal", "instance-storage-supported", "instance-storage-info.total-size",
        "instance-storage-info.disk.type", "memory-info.size-in-mib", "vcpu-info.default-vcpus",
        "vcpu-info.default-cores", "vcpu-info.default-threads-per-core", "processor-info.supported-architecture",
        "network-info.network-performance", "supported-root-device-type", "supported-usage-class",
        "supported-virtualization-type", "gpu-info.count", "gpu-info.name", "gpu-info.manufacturer",
    ];

    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        let one = |s: String| vec![Cow::Owned(s)];
        match name {
            "instance-type" => vec![Cow::Borrowed(self.name)],
            "current-generation" => vec![b(self.current_generation())],
            "free-tier-eligible" => vec![b(self.free_tier_eligible())],
            "burstable-performance-supported" => vec![b(self.burstable())],
            "hypervisor" => vec![Cow::Borrowed(self.hypervisor())],
            "bare-metal" => vec![b(false)],
            "instance-storage-supported" => vec![b(self.storage.is_some())],
            "instance-storage-info.total-size" => one(self.total_storage_gb().to_string()),
            "instance-storage-info.disk.type" => self.storage.map(|s| vec![Cow::Borrowed(s.kind)]).unwrap_or_default(),
            "memory-info.size-in-mib" => one(self.memory_mib.to_string()),
            "vcpu-info.default-vcpus" => one(self.vcpus.to_string()),
            "vcpu-info.default-cores" => one(self.cores().to_string()),
            "vcpu-info.default-threads-per-core" => one(self.threads_per_core().to_string()),
            "processor-info.supported-architecture" => vec![Cow::Borrowed("x86_64")],
            "network-info.network-performance" => vec![Cow::Borrowed(self.network)],
            "supported-root-device-type" => vec![Cow::Borrowed("ebs")],
            "supported-usage-class" => vec![Cow::Borrowed("on-demand"), Cow::Borrowed("spot")],
            "supported-virtualization-type" => vec![Cow::Borrowed("hvm")],
            "gpu-info.count" => self.gpus.map(|g| one(g.count.to_string())).unwrap_or_default(),
            "gpu-info.name" => self.gpus.map(|g| vec![Cow::Borrowed(g.name)]).unwrap_or_default(),
            "gpu-info.manufacturer" => self.gpus.map(|g| vec![Cow::Borrowed(g.manufacturer)]).unwrap_or_default(),
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t2_micro_is_one_vcpu_one_gib() {
        let t = lookup("t2.micro").expect("t2.micro");
        assert_eq!((t.vcpus, t.memory_mib), (1, 1024));
        assert!(t.free_tier_eligible());
        assert_eq!(t.category(), Category::GeneralPurpose);
    }

    #[test]
    fn every_category_is_present_and_names_are_unique() {
        for c in [Category::GeneralPurpose, Category::ComputeOptimized, Category::MemoryOptimized,
            Category::StorageOptimized, Category::AcceleratedComputing] {
            assert!(CATALOG.iter().any(|t| t.category() == c), "{c:?}");
        }
        let mut names: Vec<&str> = CATALOG.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CATALOG.len());
        assert!(lookup(DEFAULT_TYPE).is_some());
    }

    #[test]
    fn rows_are_sane() {
        for t in CATALOG {
            assert!(t.vcpus >= 1 && t.memory_mib >= 512 && t.hourly_usd > 0.0, "{}", t.name);
            assert_eq!(t.cores() * t.threads_per_core(), t.vcpus, "{}", t.name);
            if t.category() == Category::AcceleratedComputing {
                assert!(t.gpus.is_some(), "{} has GPUs", t.name);
            }
            if t.category() == Category::StorageOptimized {
                assert!(t.storage.is_some(), "{} has instance storage", t.name);
            }
        }
    }
}
