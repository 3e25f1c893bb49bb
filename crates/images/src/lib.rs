//! Builds Strato's built-in images from Debian packages, through the host's
//! configured package sources (`apt-get download`), and keeps them on disk.
//!
//! An image is a directory with a kernel, an initramfs, a root disk and a
//! `manifest.json`; instances boot the kernel directly and get a copy-on-write
//! overlay of the root disk. Images are built into a scratch directory and
//! moved into place only when complete, so a failed or interrupted build
//! never leaves a half image behind.

mod cpio;
pub mod kernel;
pub mod debian;
pub mod minimal;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Tool(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("unknown image '{0}' (built-in images: minimal, debian-12)")]
    Unknown(String),
}

pub type Result<T> = std::result::Result<T, ImageError>;

/// What a built image is made of, as recorded in its manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub key: String,
    pub kernel: String,
    pub initrd: String,
    pub disk: String,
    /// `raw` or `qcow2`.
    pub disk_format: String,
    /// Extra kernel command line the image needs (`root=…`).
    pub cmdline: String,
    pub login_user: String,
    pub packages: Vec<String>,
    pub built_at: String,
}

/// Paths of a built image's files.
#[derive(Clone, Debug)]
pub struct Artifacts {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Artifacts {
    pub fn kernel(&self) -> PathBuf {
        self.dir.join(&self.manifest.kernel)
    }
    pub fn initrd(&self) -> PathBuf {
        self.dir.join(&self.manifest.initrd)
    }
    pub fn disk(&self) -> PathBuf {
        self.dir.join(&self.manifest.disk)
    }

    /// The size the root disk presents to a guest, in bytes.
    pub fn disk_size(&self) -> Result<u64> {
        virtual_size(&self.disk())
    }
}

/// The guest-visible size of a disk file of any format QEMU reads.
pub fn virtual_size(disk: &Path) -> Result<u64> {
    let out = tool("qemu-img", &["info", "-U", "--output=json", &disk.to_string_lossy()], None)?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| ImageError::Tool(format!("qemu-img info: {e}")))?;
    v["virtual-size"].as_u64().ok_or_else(|| ImageError::Tool(format!("qemu-img info gave no size for {}", disk.display())))
}

pub struct ImageStore {
    root: PathBuf,
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
    let what = what.into();
    move |e| ImageError::Io(what, e)
}

/// Runs a host tool; a failure names the tool and says what it printed.
pub(crate) fn tool(program: &str, args: &[&str], cwd: Option<&Path>) -> Result<String> {
    let mut c = Command::new(program);
    c.args(args);
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    let out = c.output().map_err(|e| ImageError::Tool(format!("cannot run {program}: {e} (is it installed? `strato doctor` says what is missing)")))?;
    if !out.status.success() {
        return Err(ImageError::Tool(format!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl ImageStore {
    pub fn new(root: PathBuf) -> ImageStore {
        ImageStore { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// The built image `key`, if it is complete.
    pub fn get(&self, key: &str) -> Option<Artifacts> {
        let dir = self.dir(key);
        let text = std::fs::read_to_string(dir.join("manifest.json")).ok()?;
        let manifest: Manifest = serde_json::from_str(&text).ok()?;
        let a = Artifacts { dir, manifest };
        (a.kernel().exists() && a.initrd().exists() && a.disk().exists()).then_some(a)
    }

    /// Builds `key`, reporting progress through `progress`.
    pub fn build(&self, key: &str, progress: &mut dyn FnMut(&str)) -> Result<Artifacts> {
        std::fs::create_dir_all(&self.root).map_err(io_err(format!("creating {}", self.root.display())))?;
        let scratch = self.root.join(format!(".build-{key}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(io_err("creating the build directory"))?;
        let cache = self.root.join(".cache").join("debs");
        std::fs::create_dir_all(&cache).map_err(io_err("creating the package cache"))?;
        let result = match key {
            "minimal" => minimal::build(&scratch, &cache, progress),
            "debian-12" => debian::build(&scratch, progress),
            other => Err(ImageError::Unknown(other.to_string())),
        };
        let out = scratch.join("out");
        let manifest = match result {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&scratch);
                return Err(e);
            }
        };
        if let Err(e) = finish(&out, manifest.clone()) {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(e);
        }
        // Swap the finished image in; instances already running keep the old
        // files open (their overlays name the old disk as backing file, which
        // is kept until no overlay refers to it).
        let dest = self.dir(key);
        if dest.exists() {
            let old = self.root.join(format!(".old-{key}-{}", std::process::id()));
            std::fs::rename(&dest, &old).map_err(io_err("moving the old image aside"))?;
            let keep = self.root.join("retired");
            let _ = std::fs::create_dir_all(&keep);
            let _ = std::fs::rename(&old, keep.join(format!("{key}-{}", manifest.built_at.replace(':', "-"))));
        }
        std::fs::rename(&out, &dest).map_err(io_err("installing the image"))?;
        let _ = std::fs::remove_dir_all(&scratch);
        progress(&format!("image {key} is ready in {}", dest.display()));
        self.get(key).ok_or_else(|| ImageError::Tool(format!("the built image {key} is incomplete")))
    }
}

/// The last step of every image: the kernel in the form that boots fastest,
/// files readable by the unprivileged QEMU user, and the manifest that makes
/// the directory an image.
fn finish(dir: &Path, mut manifest: Manifest) -> Result<()> {
    if manifest.kernel == "vmlinuz" && kernel::unpack(&dir.join("vmlinuz"), &dir.join("vmlinux"))? {
        manifest.kernel = "vmlinux".into();
        let _ = std::fs::remove_file(dir.join("vmlinuz"));
    }
    for f in [manifest.kernel.as_str(), manifest.initrd.as_str(), manifest.disk.as_str()] {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644));
    }
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| ImageError::Tool(e.to_string()))?;
    std::fs::write(dir.join("manifest.json"), text).map_err(io_err("writing the manifest"))
}

/// The concrete package a virtual or meta package stands for (the kernel).
pub(crate) fn resolve_depends(meta: &str) -> Result<String> {
    let out = tool("apt-cache", &["depends", meta], None)?;
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .map(|s| s.trim().to_string())
        .ok_or_else(|| ImageError::Tool(format!("cannot find the package {meta} stands for (apt-cache depends {meta})")))
}

/// Downloads packages into `cache` (the host's configured sources) and
/// returns the .deb paths, in the order given.
pub(crate) fn download(packages: &[String], cache: &Path, progress: &mut dyn FnMut(&str)) -> Result<Vec<PathBuf>> {
    let missing: Vec<String> = packages.iter().filter(|p| find_deb(cache, p).is_none()).cloned().collect();
    if !missing.is_empty() {
        progress(&format!("downloading {} packages: {}", missing.len(), missing.join(" ")));
        let mut args = vec!["download"];
        args.extend(missing.iter().map(String::as_str));
        tool("apt-get", &args, Some(cache))?;
    }
    let mut out = Vec::new();
    for p in packages {
        out.push(find_deb(cache, p).ok_or_else(|| ImageError::Tool(format!("apt-get did not download {p}")))?);
    }
    Ok(out)
}

fn find_deb(cache: &Path, package: &str) -> Option<PathBuf> {
    let prefix = format!("{package}_");
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb")))
        .collect();
    found.sort();
    found.pop()
}

pub(crate) fn extract(deb: &Path, into: &Path) -> Result<()> {
    let d = deb.to_string_lossy().into_owned();
    let i = into.to_string_lossy().into_owned();
    tool("dpkg-deb", &["-x", &d, &i], None).map(|_| ())
}

pub(crate) fn now_stamp() -> String {
    strato_core::time::Timestamp::now().iso8601_seconds()
}

impl ImageStore {
    /// Makes image `key` from an instance's root disk (`CreateImage`): the
    /// disk is flattened into a qcow2 of its own (reading it even while a VM
    /// has it open, which makes a crash-consistent copy, as EC2's NoReboot
    /// does), and the kernel and initramfs come from the image it was
    /// launched from.
    pub fn derive(&self, key: &str, from: &Artifacts, root_disk: &Path) -> Result<Artifacts> {
        let scratch = self.root.join(format!(".build-{key}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(io_err("creating the image directory"))?;
        let result = (|| -> Result<Manifest> {
            std::fs::copy(from.kernel(), scratch.join(&from.manifest.kernel)).map_err(io_err("copying the kernel"))?;
            std::fs::copy(from.initrd(), scratch.join("initrd")).map_err(io_err("copying the initramfs"))?;
            let disk = scratch.join("root.qcow2");
            tool("qemu-img", &["convert", "-U", "-O", "qcow2", &root_disk.to_string_lossy(), &disk.to_string_lossy()], None)?;
            Ok(Manifest {
                key: key.to_string(),
                kernel: from.manifest.kernel.clone(),
                initrd: "initrd".into(),
                disk: "root.qcow2".into(),
                disk_format: "qcow2".into(),
                cmdline: from.manifest.cmdline.clone(),
                login_user: from.manifest.login_user.clone(),
                packages: from.manifest.packages.clone(),
                built_at: now_stamp(),
            })
        })();
        self.install(key, &scratch, result)
    }

    /// Makes image `key` from a disk file a user brings (`RegisterImage`),
    /// raw or qcow2. Strato boots an image's own kernel directly, so the disk
    /// must hold an ext4 filesystem spanning the whole disk with
    /// `/boot/vmlinuz-*` and `/boot/initrd.img-*`.
    pub fn import(&self, key: &str, disk_file: &Path) -> Result<Artifacts> {
        let scratch = self.root.join(format!(".build-{key}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(io_err("creating the image directory"))?;
        let result = (|| -> Result<Manifest> {
            let disk = scratch.join("root.qcow2");
            let src = disk_file.to_string_lossy().into_owned();
            tool("qemu-img", &["convert", "-O", "qcow2", &src, &disk.to_string_lossy()], None)?;
            // debugfs reads raw images only: take the kernel out of a raw copy.
            let raw = scratch.join("root.raw");
            tool("qemu-img", &["convert", "-O", "raw", &src, &raw.to_string_lossy()], None)?;
            let raw_s = raw.to_string_lossy().into_owned();
            let listing = tool("debugfs", &["-R", "ls -p /boot", &raw_s], None).unwrap_or_default();
            let names: Vec<String> = listing.lines().filter_map(|l| l.split('/').nth(5).map(str::to_string)).collect();
            let pick = |prefix: &str| names.iter().filter(|n| n.starts_with(prefix)).max().cloned();
            let (Some(kernel), Some(initrd)) = (pick("vmlinuz-"), pick("initrd.img-")) else {
                let _ = std::fs::remove_file(&raw);
                return Err(ImageError::Tool(format!(
                    "{} has no /boot/vmlinuz-* and /boot/initrd.img-* on an ext4 filesystem spanning the whole disk; Strato boots an image's own kernel directly",
                    disk_file.display()
                )));
            };
            for (name, out) in [(kernel, "vmlinuz"), (initrd, "initrd")] {
                let target = scratch.join(out).to_string_lossy().into_owned();
                tool("debugfs", &["-R", &format!("dump /boot/{name} {target}"), &raw_s], None)?;
            }
            let _ = std::fs::remove_file(&raw);
            Ok(Manifest {
                key: key.to_string(),
                kernel: "vmlinuz".into(),
                initrd: "initrd".into(),
                disk: "root.qcow2".into(),
                disk_format: "qcow2".into(),
                cmdline: "root=/dev/vda rw net.ifnames=0".into(),
                login_user: String::new(),
                packages: vec![],
                built_at: now_stamp(),
            })
        })();
        self.install(key, &scratch, result)
    }

    fn install(&self, key: &str, scratch: &Path, result: Result<Manifest>) -> Result<Artifacts> {
        let manifest = match result {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_dir_all(scratch);
                return Err(e);
            }
        };
        if let Err(e) = finish(scratch, manifest) {
            let _ = std::fs::remove_dir_all(scratch);
            return Err(e);
        }
        let dest = self.dir(key);
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::rename(scratch, &dest).map_err(io_err("installing the image"))?;
        self.get(key).ok_or_else(|| ImageError::Tool(format!("the image {key} is incomplete")))
    }
}
