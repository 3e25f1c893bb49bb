//! Choosing how QEMU runs guests: KVM when the host really has hardware
//! virtualisation, TCG (software emulation) otherwise.
//!
//! A `/dev/kvm` alone is not proof: some nested hypervisors offer one that
//! cannot boot an ordinary kernel. KVM is used only when the CPU flags show
//! VT-x or AMD-V *and* `/dev/kvm` opens read-write.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        })
    }
}

/// What the host offers, with the reasons, for `strato doctor` and the log.
#[derive(Clone, Debug)]
pub struct Detection {
    pub chosen: Accel,
    pub cpu_flags: bool,
    pub dev_kvm: Result<(), String>,
    pub reason: String,
}

pub fn detect() -> Detection {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_flags = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    let dev_kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(|_| ())
        .map_err(|e| e.to_string());
    let (chosen, reason) = match (cpu_flags, &dev_kvm) {
        (true, Ok(())) => (Accel::Kvm, "the CPU has hardware virtualisation and /dev/kvm opens".to_string()),
        (false, Ok(())) => (
            Accel::Tcg,
            "/dev/kvm exists but the CPU flags show no vmx/svm (a paravirtual or nested KVM that cannot boot stock kernels): using TCG".to_string(),
        ),
        (true, Err(e)) => (Accel::Tcg, format!("the CPU has hardware virtualisation but /dev/kvm does not open ({e}): using TCG")),
        (false, Err(_)) => (Accel::Tcg, "no hardware virtualisation: using TCG software emulation".to_string()),
    };
    Detection { chosen, cpu_flags, dev_kvm, reason }
}

/// Resolves the configured choice (`auto`, `kvm`, `tcg`).
pub fn choose(setting: &str) -> Result<(Accel, String), String> {
    match setting {
        "auto" => {
            let d = detect();
            Ok((d.chosen, d.reason))
        }
        "kvm" => Ok((Accel::Kvm, "kvm forced by configuration".into())),
        "tcg" => Ok((Accel::Tcg, "tcg forced by configuration".into())),
        other => Err(format!("accel '{other}' is not one of auto, kvm, tcg")),
    }
}

/// The host's TSC frequency in kHz, which a TCG guest is told so it never has
/// to calibrate it (calibration against the emulated PIT fails now and then
/// and leaves the guest hung early in boot).
pub fn host_tsc_khz() -> Option<u64> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = cpuinfo.lines().find(|l| l.starts_with("cpu MHz"))?.split(':').nth(1)?.trim().parse().ok()?;
    Some((mhz * 1000.0).round() as u64)
}
