//! `strato doctor`: what this host can run, which accelerator QEMU will use
//! and why, and what is missing with the command that installs it.

use std::process::Command;

struct Check {
    what: &'static str,
    program: &'static str,
    args: &'static [&'static str],
    package: &'static str,
    needed_for: &'static str,
    /// Without it Strato still runs instances (only something optional is lost).
    optional: bool,
}

const CHECKS: &[Check] = &[
    Check { what: "QEMU", program: "qemu-system-x86_64", args: &["--version"], package: "qemu-system-x86", needed_for: "running instances", optional: false },
    Check { what: "qemu-img", program: "qemu-img", args: &["--version"], package: "qemu-utils", needed_for: "instance disks", optional: false },
    Check { what: "iproute2", program: "ip", args: &["-V"], package: "iproute2", needed_for: "the data plane", optional: false },
    Check { what: "nftables", program: "nft", args: &["--version"], package: "nftables", needed_for: "metadata routing and NAT", optional: false },
    Check { what: "dpkg-deb", program: "dpkg-deb", args: &["--version"], package: "dpkg", needed_for: "building images", optional: false },
    Check { what: "apt-get", program: "apt-get", args: &["--version"], package: "apt", needed_for: "building images", optional: false },
    Check { what: "mkfs.ext4", program: "mkfs.ext4", args: &["-V"], package: "e2fsprogs", needed_for: "building images", optional: false },
    Check { what: "debootstrap", program: "debootstrap", args: &["--version"], package: "debootstrap", needed_for: "building the debian-12 image", optional: true },
    Check { what: "lz4", program: "lz4", args: &["--version"], package: "lz4", needed_for: "unpacking kernels at image build, for faster boots", optional: true },
];

pub fn run(accel_setting: &str) -> bool {
    let mut ok = true;
    let mut missing = Vec::new();
    println!("Strato host check\n");
    for c in CHECKS {
        let found = Command::new(c.program).args(c.args).output().map(|o| o.status.success() || !o.stdout.is_empty()).unwrap_or(false);
        println!("  {:<12} {:<8} ({})", c.what, if found { "ok" } else { "MISSING" }, c.needed_for);
        if !found {
            missing.push(c.package);
            if !c.optional {
                ok = false;
            }
        }
    }
    let d = strato_runtime::accel::detect();
    println!();
    println!("  CPU virtualisation flags (vmx/svm): {}", if d.cpu_flags { "present" } else { "absent" });
    println!("  /dev/kvm: {}", match &d.dev_kvm { Ok(()) => "opens read-write".to_string(), Err(e) => format!("unusable ({e})") });
    match strato_runtime::accel::choose(accel_setting) {
        Ok((a, why)) => println!("  accelerator: {a} ({why})"),
        Err(e) => {
            println!("  accelerator: {e}");
            ok = false;
        }
    }
    let root = unsafe_free_is_root();
    println!("  running as root: {}", if root { "yes" } else { "no (the QEMU runtime needs root for namespaces, taps and nftables)" });
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        println!("\nInstall what is missing with:\n  apt-get install -y {}", missing.join(" "));
    }
    println!("\n{}", if ok { "This host can run Strato." } else { "This host cannot run Strato's QEMU runtime yet." });
    ok
}

fn unsafe_free_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}
