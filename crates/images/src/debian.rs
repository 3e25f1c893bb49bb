//! The debian-12 image: Debian bookworm made with debootstrap, with OpenSSH
//! and cloud-init set up for the EC2 datasource, so `#cloud-config`, scripts
//! and multipart user data work as on EC2. Login user: `admin`.
//!
//! Strato passes the instance's network configuration on the kernel command
//! line (cloud-init's `network-config=`), so the image needs no DHCP server.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::{io_err, now_stamp, tool, ImageError, Manifest, Result};

const CLOUD_CFG: &str = include_str!("../../../images/debian-12/cloud.cfg");
const DS_IDENTIFY: &str = include_str!("../../../images/debian-12/ds-identify.cfg");
const FSTAB: &str = include_str!("../../../images/debian-12/fstab");

const PACKAGES: &[&str] = &[
    "linux-image-cloud-amd64", "systemd-sysv", "udev", "openssh-server", "cloud-init",
    // debootstrap does not resolve virtual packages: python3-cryptography needs
    // python3-cffi-backend-api-max, which python3-cffi-backend provides.
    "python3-cffi-backend", "ifupdown", "netbase",
    "sudo", "iproute2", "isc-dhcp-client", "ca-certificates", "e2fsprogs", "less",
];

const ROOT_SIZE: &str = "2G";

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    }
    std::fs::write(path, text).map_err(io_err(format!("writing {}", path.display())))
}

fn chroot(root: &str, args: &[&str]) -> Result<String> {
    let mut all = vec![root];
    all.extend_from_slice(args);
    tool("chroot", &all, None)
}

pub fn build(scratch: &Path, progress: &mut dyn FnMut(&str)) -> Result<Manifest> {
    let rootfs = scratch.join("rootfs");
    let out = scratch.join("out");
    std::fs::create_dir_all(&out).map_err(io_err("creating the output directory"))?;
    let root = rootfs.to_string_lossy().into_owned();
    progress("debian-12: debootstrap bookworm (this downloads and installs a few hundred packages)");
    let include = format!("--include={}", PACKAGES.join(","));
    tool("debootstrap", &["--variant=minbase", &include, "bookworm", &root], None)?;

    progress("debian-12: configuring cloud-init, SSH and the kernel");
    write(&rootfs.join("etc/cloud/cloud.cfg.d/90-strato.cfg"), CLOUD_CFG)?;
    write(&rootfs.join("etc/cloud/ds-identify.cfg"), DS_IDENTIFY)?;
    write(&rootfs.join("etc/fstab"), FSTAB)?;
    write(&rootfs.join("etc/hostname"), "debian\n")?;
    // The virtio-mmio drivers the root disk needs, in the initramfs.
    write(&rootfs.join("etc/initramfs-tools/modules"), "virtio_mmio\nvirtio_blk\nvirtio_net\n")?;
    // Every instance makes its own machine id and SSH host keys.
    write(&rootfs.join("etc/machine-id"), "")?;
    for e in std::fs::read_dir(rootfs.join("etc/ssh")).map_err(io_err("reading etc/ssh"))?.filter_map(|e| e.ok()) {
        if e.file_name().to_string_lossy().starts_with("ssh_host_") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    chroot(&root, &["update-initramfs", "-u", "-k", "all"])?;
    let boot = rootfs.join("boot");
    let mut kernel = None;
    let mut initrd = None;
    for e in std::fs::read_dir(&boot).map_err(io_err("reading boot"))?.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("vmlinuz-") {
            kernel = Some(e.path());
        } else if name.starts_with("initrd.img-") {
            initrd = Some(e.path());
        }
    }
    let (Some(kernel), Some(initrd)) = (kernel, initrd) else {
        return Err(ImageError::Tool("debootstrap installed no kernel and initramfs in /boot".into()));
    };
    std::fs::copy(&kernel, out.join("vmlinuz")).map_err(io_err("copying the kernel"))?;
    std::fs::copy(&initrd, out.join("initrd")).map_err(io_err("copying the initramfs"))?;
    let _ = chroot(&root, &["apt-get", "clean"]);
    for d in ["var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale"] {
        let p = rootfs.join(d);
        let _ = std::fs::remove_dir_all(&p);
        let _ = std::fs::create_dir_all(&p);
    }

    progress("debian-12: making the ext4 root volume");
    let disk = out.join("root.img");
    tool("mkfs.ext4", &["-q", "-F", "-L", "debian-root", "-d", &root, &disk.to_string_lossy(), ROOT_SIZE], None)?;
    for f in ["vmlinuz", "initrd", "root.img"] {
        let _ = std::fs::set_permissions(out.join(f), std::fs::Permissions::from_mode(0o644));
    }
    Ok(Manifest {
        key: "debian-12".into(),
        kernel: "vmlinuz".into(),
        initrd: "initrd".into(),
        disk: "root.img".into(),
        disk_format: "raw".into(),
        cmdline: "root=/dev/vda rw net.ifnames=0".into(),
        login_user: "admin".into(),
        packages: PACKAGES.iter().map(|s| s.to_string()).collect(),
        built_at: now_stamp(),
    })
}
