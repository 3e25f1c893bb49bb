//! The minimal image: Debian's cloud kernel, busybox, dropbear and a short
//! init that configures the network from the kernel command line, reads its
//! SSH key and user data from the metadata service (IMDSv2), and runs `#!`
//! user data once. Login user: `ec2-user`.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use crate::cpio::Cpio;
use crate::{download, extract, io_err, now_stamp, resolve_depends, tool, ImageError, Manifest, Result};

const INITRAMFS_INIT: &str = include_str!("../../../images/minimal/initramfs-init");
const INITTAB: &str = include_str!("../../../images/minimal/inittab");
const RCS: &str = include_str!("../../../images/minimal/rcS");
const RCK: &str = include_str!("../../../images/minimal/rcK");
const POWER_BUTTON: &str = include_str!("../../../images/minimal/power-button");

/// Userland packages; their shared libraries are checked after extraction.
const PACKAGES: &[&str] = &[
    "busybox-static", "dropbear-bin", "libc6", "libcrypt1", "zlib1g", "libtomcrypt1", "libtommath1", "libgmp10",
    "e2fsprogs", "libext2fs2", "libcom-err2", "libblkid1", "libuuid1", "libgcc-s1",
];

/// Kernel modules the initramfs loads, in dependency order.
const MODULES: &[&str] = &["virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "failover", "net_failover", "virtio_net", "button", "evdev"];

/// Size of the root filesystem image; the instance's volume may be larger and
/// the image grows the filesystem to fit at boot.
const ROOT_MIB: &str = "128M";

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    std::fs::write(path, text).map_err(io_err(format!("writing {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_err(format!("chmod {}", path.display())))
}

fn mkdirs(root: &Path, dirs: &[&str]) -> Result<()> {
    for d in dirs {
        std::fs::create_dir_all(root.join(d)).map_err(io_err(format!("creating {d}")))?;
    }
    Ok(())
}

pub fn build(scratch: &Path, cache: &Path, progress: &mut dyn FnMut(&str)) -> Result<Manifest> {
    progress("minimal: resolving the kernel package");
    let kernel_pkg = resolve_depends("linux-image-cloud-amd64")?;
    let mut wanted: Vec<String> = PACKAGES.iter().map(|s| s.to_string()).collect();
    wanted.push(kernel_pkg.clone());
    let debs = download(&wanted, cache, progress)?;

    let rootfs = scratch.join("rootfs");
    let kernel_dir = scratch.join("kernel");
    let out = scratch.join("out");
    mkdirs(scratch, &["rootfs", "kernel", "out"])?;
    progress("minimal: unpacking packages");
    for deb in &debs {
        let is_kernel = deb.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&kernel_pkg));
        extract(deb, if is_kernel { &kernel_dir } else { &rootfs })?;
    }

    // The kernel and its virtio modules.
    let modules_root = kernel_dir.join("lib/modules");
    let version = std::fs::read_dir(&modules_root)
        .map_err(io_err("reading the kernel's modules"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .ok_or_else(|| ImageError::Tool("the kernel package has no modules".into()))?;
    std::fs::copy(kernel_dir.join(format!("boot/vmlinuz-{version}")), out.join("vmlinuz")).map_err(io_err("copying the kernel"))?;

    progress("minimal: assembling the initramfs");
    let mut cpio = Cpio::new();
    for d in ["bin", "dev", "proc", "sys", "newroot", "modules"] {
        cpio.dir(d);
    }
    let busybox = std::fs::read(rootfs.join("bin/busybox")).map_err(io_err("reading busybox"))?;
    cpio.file("bin/busybox", 0o755, &busybox);
    cpio.file("init", 0o755, INITRAMFS_INIT.as_bytes());
    for m in MODULES {
        let path = find_module(&modules_root.join(&version), m)
            .ok_or_else(|| ImageError::Tool(format!("the kernel {version} has no module {m}")))?;
        let data = std::fs::read(&path).map_err(io_err(format!("reading {}", path.display())))?;
        cpio.file(&format!("modules/{m}.ko"), 0o644, &data);
    }
    std::fs::write(out.join("initrd"), cpio.finish()).map_err(io_err("writing the initramfs"))?;

    progress("minimal: assembling the root filesystem");
    mkdirs(&rootfs, &["sbin", "etc/init.d", "etc/dropbear", "home/ec2-user", "root", "proc", "sys", "dev", "run", "tmp", "var/log", "var/lib/strato"])?;
    let applets = tool(&rootfs.join("bin/busybox").to_string_lossy(), &["--list"], None)?;
    for a in applets.lines().map(str::trim).filter(|a| !a.is_empty()) {
        let exists = ["bin", "sbin", "usr/bin", "usr/sbin"].iter().any(|d| rootfs.join(d).join(a).exists());
        if !exists {
            symlink("busybox", rootfs.join("bin").join(a)).map_err(io_err(format!("linking {a}")))?;
        }
    }
    let init = rootfs.join("sbin/init");
    let _ = std::fs::remove_file(&init);
    symlink("/bin/busybox", &init).map_err(io_err("linking init"))?;
    write(&rootfs.join("etc/inittab"), INITTAB, 0o644)?;
    write(&rootfs.join("etc/init.d/rcS"), RCS, 0o755)?;
    write(&rootfs.join("etc/init.d/rcK"), RCK, 0o755)?;
    write(&rootfs.join("etc/init.d/power-button"), POWER_BUTTON, 0o755)?;
    write(&rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nec2-user:x:1000:1000:ec2-user:/home/ec2-user:/bin/sh\n", 0o644)?;
    write(&rootfs.join("etc/group"), "root:x:0:\nec2-user:x:1000:\n", 0o644)?;
    write(&rootfs.join("etc/shells"), "/bin/sh\n", 0o644)?;
    write(&rootfs.join("etc/hostname"), "strato-minimal\n", 0o644)?;
    std::os::unix::fs::chown(rootfs.join("home/ec2-user"), Some(1000), Some(1000)).map_err(io_err("chown home"))?;
    for d in ["usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/lintian", "usr/share/info"] {
        let _ = std::fs::remove_dir_all(rootfs.join(d));
    }

    // Every dynamic program must find its libraries in the image.
    let root = rootfs.to_string_lossy().into_owned();
    for prog in ["/usr/sbin/dropbear", "/usr/bin/dropbearkey", "/sbin/resize2fs"] {
        let check = std::process::Command::new("chroot").args([&root, prog, "-h"]).output();
        if let Ok(o) = check {
            let err = String::from_utf8_lossy(&o.stderr);
            if err.contains("error while loading shared libraries") {
                return Err(ImageError::Tool(format!("the minimal image is missing a library of {prog}: {}", err.trim())));
            }
        }
    }

    progress("minimal: making the ext4 root volume");
    let disk = out.join("root.img");
    tool("mkfs.ext4", &["-q", "-F", "-L", "strato-root", "-d", &root, &disk.to_string_lossy(), ROOT_MIB], None)?;
    std::fs::set_permissions(&disk, std::fs::Permissions::from_mode(0o644)).map_err(io_err("chmod root.img"))?;

    Ok(Manifest {
        key: "minimal".into(),
        kernel: "vmlinuz".into(),
        initrd: "initrd".into(),
        disk: "root.img".into(),
        disk_format: "raw".into(),
        cmdline: "root=/dev/vda rw".into(),
        login_user: "ec2-user".into(),
        packages: wanted,
        built_at: now_stamp(),
    })
}

fn find_module(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    let want = format!("{name}.ko");
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.filter_map(|e| e.ok()) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().and_then(|n| n.to_str()) == Some(want.as_str()) {
                return Some(p);
            }
        }
    }
    None
}
