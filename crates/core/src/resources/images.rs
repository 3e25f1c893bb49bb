//! Images (AMIs): the built-in public images of the platform and, later,
//! images users make or bring.
//!
//! Built-in images exist in every served region with an id derived from the
//! image and the region, so the same image has the same AMI id across restarts
//! and machines, as a published AMI does.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::filter::{self, Filter, Filterable, Page};
use crate::ids::{AccountId, ImageId, Region, ResourceKind, SnapshotId};
use crate::service::{Ctx, Ec2, PLATFORM_ALIAS};
use crate::store::{Resource, TxExt, WriteTxExt};
use crate::tags::Tags;
use crate::time::Timestamp;

/// A built-in image in the catalogue.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinImage {
    /// Short name used by `strato image build NAME`.
    pub key: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub root_size_gib: u32,
    pub login_user: &'static str,
}

pub const BUILTIN_IMAGES: &[BuiltinImage] = &[
    BuiltinImage {
        key: "minimal",
        name: "strato-minimal-x86_64",
        description: "Strato minimal Linux: busybox, dropbear SSH, metadata-driven setup, runs #! user data",
        root_size_gib: 1,
        login_user: "ec2-user",
    },
    BuiltinImage {
        key: "debian-12",
        name: "debian-12-amd64",
        description: "Debian 12 (bookworm) with OpenSSH and cloud-init (EC2 datasource)",
        root_size_gib: 8,
        login_user: "admin",
    },
];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Image {
    pub id: ImageId,
    pub owner: AccountId,
    pub region: Region,
    pub name: String,
    pub description: String,
    pub architecture: String,
    /// `pending`, `available`, `failed`, …
    pub state: String,
    pub public: bool,
    pub owner_alias: Option<String>,
    pub created: Timestamp,
    pub root_device_name: String,
    pub root_size_gib: u32,
    pub snapshot_id: SnapshotId,
    /// The key of the image's files on the host: the catalogue name of a
    /// built-in image, the image id of one made by CreateImage/RegisterImage.
    pub builtin: Option<String>,
    pub imds_support: Option<String>,
    pub boot_mode: Option<String>,
    pub tags: Tags,
}

impl Resource for Image {
    const KIND: ResourceKind = ResourceKind::Image;
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

impl Image {
    pub fn location(&self) -> String {
        format!("{}/{}", self.owner_alias.as_deref().unwrap_or(self.owner.as_str()), self.name)
    }

    pub fn visible_to(&self, account: &AccountId) -> bool {
        self.public || &self.owner == account
    }
}

fn tf(v: bool) -> Cow<'static, str> {
    Cow::Borrowed(if v { "true" } else { "false" })
}

impl Filterable for Image {
    const FILTERS: &'static [&'static str] = &[
        "architecture", "block-device-mapping.delete-on-termination", "block-device-mapping.device-name",
        "block-device-mapping.snapshot-id", "block-device-mapping.volume-size", "block-device-mapping.volume-type",
        "block-device-mapping.encrypted", "creation-date", "description", "ena-support", "hypervisor", "image-id",
        "image-type", "imds-support", "is-public", "name", "owner-alias", "owner-id", "platform-details",
        "root-device-name", "root-device-type", "state", "virtualization-type", "boot-mode",
    ];
    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        match name {
            "architecture" => vec![Cow::Borrowed(self.architecture.as_str())],
            "block-device-mapping.delete-on-termination" => vec![tf(true)],
            "block-device-mapping.device-name" | "root-device-name" => vec![Cow::Borrowed(self.root_device_name.as_str())],
            "block-device-mapping.snapshot-id" => vec![Cow::Borrowed(self.snapshot_id.as_str())],
            "block-device-mapping.volume-size" => vec![Cow::Owned(self.root_size_gib.to_string())],
            "block-device-mapping.volume-type" => vec![Cow::Borrowed("gp3")],
            "block-device-mapping.encrypted" => vec![tf(false)],
            "creation-date" => vec![Cow::Owned(self.created.iso8601())],
            "description" => vec![Cow::Borrowed(self.description.as_str())],
            "ena-support" => vec![tf(true)],
            "hypervisor" => vec![Cow::Borrowed("xen")],
            "image-id" => vec![Cow::Borrowed(self.id.as_str())],
            "image-type" => vec![Cow::Borrowed("machine")],
            "imds-support" => self.imds_support.as_deref().map(|s| vec![Cow::Borrowed(s)]).unwrap_or_default(),
            "is-public" => vec![tf(self.public)],
            "name" => vec![Cow::Borrowed(self.name.as_str())],
            "owner-alias" => self.owner_alias.as_deref().map(|s| vec![Cow::Borrowed(s)]).unwrap_or_default(),
            "owner-id" => vec![Cow::Borrowed(self.owner.as_str())],
            "platform-details" => vec![Cow::Borrowed("Linux/UNIX")],
            "root-device-type" => vec![Cow::Borrowed("ebs")],
            "state" => vec![Cow::Borrowed(self.state.as_str())],
            "virtualization-type" => vec![Cow::Borrowed("hvm")],
            "boot-mode" => self.boot_mode.as_deref().map(|s| vec![Cow::Borrowed(s)]).unwrap_or_default(),
            _ => vec![],
        }
    }
    fn tags(&self) -> Option<&Tags> {
        Some(&self.tags)
    }
}

#[derive(Clone, Debug, Default)]
pub struct CreateImage {
    pub instance_id: Option<crate::ids::InstanceId>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub no_reboot: bool,
    pub tag_specs: Vec<crate::tags::TagSpecification>,
}

#[derive(Clone, Debug, Default)]
pub struct RegisterImage {
    pub name: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub architecture: Option<String>,
    pub root_device_name: Option<String>,
    pub boot_mode: Option<String>,
    pub imds_support: Option<String>,
    pub tag_specs: Vec<crate::tags::TagSpecification>,
}

/// What CreateImage and RegisterImage decide about a new image.
struct ImageDraft<'a> {
    name: &'a str,
    description: String,
    root_size_gib: u32,
    root_device_name: String,
    tag_specs: &'a [crate::tags::TagSpecification],
}

/// AWS's rule for AMI names: 3 to 128 characters of letters, digits and
/// `( ) [ ] space . / - ' @ _`.
fn check_image_name(name: &str) -> Result<()> {
    let ok_len = (3..=128).contains(&name.chars().count());
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(Error::InvalidImageName(format!(
            "Invalid AMI name '{name}': names are 3 to 128 characters of letters, numbers and ( ) [ ] space . / - ' @ _"
        )))
    }
}

#[derive(Clone, Debug, Default)]
pub struct DescribeImages {
    pub image_ids: Vec<ImageId>,
    pub owners: Vec<String>,
    pub executable_users: Vec<String>,
    pub filters: Vec<Filter>,
    pub page: Page,
}

/// The attributes `DescribeImageAttribute` can report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageAttributeName {
    Description,
    Kernel,
    Ramdisk,
    LaunchPermission,
    ProductCodes,
    BlockDeviceMapping,
    SriovNetSupport,
    BootMode,
    ImdsSupport,
    LastLaunchedTime,
    DeregistrationProtection,
}

impl ImageAttributeName {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "description" => Self::Description,
            "kernel" => Self::Kernel,
            "ramdisk" => Self::Ramdisk,
            "launchPermission" => Self::LaunchPermission,
            "productCodes" => Self::ProductCodes,
            "blockDeviceMapping" => Self::BlockDeviceMapping,
            "sriovNetSupport" => Self::SriovNetSupport,
            "bootMode" => Self::BootMode,
            "imdsSupport" => Self::ImdsSupport,
            "lastLaunchedTime" => Self::LastLaunchedTime,
            "deregistrationProtection" => Self::DeregistrationProtection,
            other => {
                return Err(Error::invalid_value(
                    "attribute",
                    other,
                    "Valid values: description | kernel | ramdisk | launchPermission | productCodes | blockDeviceMapping | sriovNetSupport | bootMode | imdsSupport | lastLaunchedTime | deregistrationProtection",
                ))
            }
        })
    }
}

fn derived_hex(seed: &str) -> String {
    let mut h = hex::encode(Sha256::digest(seed.as_bytes()));
    h.truncate(17);
    h
}

pub fn builtin_image_id(key: &str, region: &str) -> ImageId {
    ImageId::from_trusted(format!("ami-{}", derived_hex(&format!("image/{key}/{region}"))))
}

impl Ec2 {
    /// Registers the built-in images in every served region where they are
    /// missing. Run at start-up.
    pub fn ensure_builtin_images(&self) -> Result<()> {
        let mut tx = self.store.write()?;
        let now = self.now();
        for region in &self.config.regions {
            for b in BUILTIN_IMAGES {
                let id = builtin_image_id(b.key, region);
                if tx.get(ResourceKind::Image, id.as_str())?.is_some() {
                    continue;
                }
                let image = Image {
                    id,
                    owner: self.config.platform_account.clone(),
                    region: Region::new_unchecked(region),
                    name: b.name.to_string(),
                    description: b.description.to_string(),
                    architecture: "x86_64".into(),
                    state: "available".into(),
                    public: true,
                    owner_alias: Some(PLATFORM_ALIAS.into()),
                    created: now,
                    root_device_name: "/dev/xvda".into(),
                    root_size_gib: b.root_size_gib,
                    snapshot_id: SnapshotId::from_trusted(format!("snap-{}", derived_hex(&format!("snapshot/{}/{region}", b.key)))),
                    builtin: Some(b.key.to_string()),
                    imds_support: None,
                    boot_mode: None,
                    tags: Tags::default(),
                };
                tx.save(&image)?;
            }
        }
        tx.commit()
    }

    /// Marks each built-in image `available` or `pending` by whether the
    /// runtime can boot it on this host.
    pub fn sync_image_states(&self) -> Result<()> {
        let mut tx = self.store.write()?;
        for mut image in tx.list_all_of::<Image>()? {
            if self.refresh_builtin_state(&mut image) {
                tx.save(&image)?;
            }
        }
        tx.commit()
    }

    /// Brings a built-in image's state up to date with the host: `strato
    /// image build` may run in another process while the server is up, and
    /// its result must be launchable without a restart.
    pub(crate) fn refresh_builtin_state(&self, image: &mut Image) -> bool {
        let Some(key) = image.builtin.as_deref() else { return false };
        let state = if self.runtime.image_ready(key) { "available" } else { "pending" };
        if image.state == state {
            return false;
        }
        image.state = state.to_string();
        true
    }

    /// An image the caller may launch, or `InvalidAMIID.NotFound`.
    pub(crate) fn visible_image(&self, tx: &dyn crate::store::ReadTx, ctx: &Ctx, id: &ImageId) -> Result<Image> {
        tx.load::<Image>(id.as_str())?
            .filter(|i| i.region == ctx.region && i.visible_to(&ctx.account))
            .ok_or_else(|| Error::not_found(ResourceKind::Image, id.as_str()))
    }

    pub fn describe_images(&self, ctx: &Ctx, req: DescribeImages) -> Result<(Vec<Image>, Option<String>)> {
        filter::check::<Image>(&req.filters)?;
        req.page.validate(5, 1000)?;
        if req.page.max_results.is_some() && !req.image_ids.is_empty() {
            return Err(Error::InvalidParameterCombination(
                "The parameter imageIdsSet cannot be used with the parameter maxResults".into(),
            ));
        }
        let platform = &self.config.platform_account;
        for o in &req.owners {
            let known = matches!(o.as_str(), "self" | "amazon" | "aws-marketplace" | PLATFORM_ALIAS) || AccountId::parse(o).is_ok();
            if !known {
                return Err(Error::InvalidUserId(o.clone()));
            }
        }
        for u in &req.executable_users {
            if !(u == "self" || u == "all" || AccountId::parse(u).is_ok()) {
                return Err(Error::InvalidUserId(u.clone()));
            }
        }
        // Built-in images whose files were built since the last look are
        // marked available before anyone sees them (see refresh_builtin_state).
        let built_since = |i: &Image| i.state == "pending" && i.builtin.as_deref().is_some_and(|k| self.runtime.image_ready(k));
        if self.store.read()?.list_of::<Image>(platform, &ctx.region)?.iter().any(built_since) {
            self.sync_image_states()?;
        }
        let tx = self.store.read()?;
        let mut all = tx.list_of::<Image>(platform, &ctx.region)?;
        if &ctx.account != platform {
            all.extend(tx.list_of::<Image>(&ctx.account, &ctx.region)?);
        }
        let visible: Vec<Image> = all.into_iter().filter(|i| i.visible_to(&ctx.account)).collect();
        let missing: Vec<String> =
            req.image_ids.iter().filter(|id| !visible.iter().any(|i| &i.id == *id)).map(|i| i.to_string()).collect();
        if !missing.is_empty() {
            return Err(Error::NotFound { kind: ResourceKind::Image, ids: missing });
        }
        let owner_ok = |i: &Image| {
            req.owners.is_empty()
                || req.owners.iter().any(|o| match o.as_str() {
                    "self" => i.owner == ctx.account,
                    PLATFORM_ALIAS => i.owner_alias.as_deref() == Some(PLATFORM_ALIAS),
                    "amazon" | "aws-marketplace" => false,
                    id => i.owner.as_str() == id,
                })
        };
        let exec_ok = |i: &Image| {
            req.executable_users.is_empty()
                || req.executable_users.iter().any(|u| match u.as_str() {
                    "all" => i.public,
                    "self" => i.public || i.owner == ctx.account,
                    id => i.public || i.owner.as_str() == id,
                })
        };
        let picked = visible
            .into_iter()
            .filter(|i| req.image_ids.is_empty() || req.image_ids.contains(&i.id))
            .filter(|i| owner_ok(i) && exec_ok(i))
            .filter(|i| filter::matches(i, &req.filters))
            .collect();
        req.page.apply(picked)
    }

    pub fn describe_image_attribute(&self, ctx: &Ctx, id: &ImageId, attr: ImageAttributeName) -> Result<Image> {
        let tx = self.store.read()?;
        let image = self.visible_image(tx.as_ref(), ctx, id)?;
        if attr == ImageAttributeName::LaunchPermission && image.owner != ctx.account {
            return Err(Error::NotAuthorized(format!("Not authorized for image:{id}")));
        }
        Ok(image)
    }

    /// A new private image of the caller, pending until its files are made.
    fn new_private_image(&self, tx: &dyn crate::store::ReadTx, ctx: &Ctx, draft: ImageDraft<'_>) -> Result<Image> {
        let ImageDraft { name, description, root_size_gib, root_device_name, tag_specs: specs } = draft;
        check_image_name(name)?;
        if let Some(other) = tx.list_of::<Image>(&ctx.account, &ctx.region)?.into_iter().find(|i| i.name == name) {
            return Err(Error::Duplicate { what: crate::error::Duplicate::ImageName, message: format!("AMI name {name} is already in use by AMI {}", other.id) });
        }
        let tags = crate::tags::for_kind(specs, ResourceKind::Image, &[ResourceKind::Image, ResourceKind::Snapshot])?;
        let id = ImageId::generate();
        let mut image = Image {
            owner: ctx.account.clone(),
            region: ctx.region.clone(),
            name: name.to_string(),
            description,
            architecture: "x86_64".into(),
            state: "pending".into(),
            public: false,
            owner_alias: None,
            created: self.now(),
            root_device_name,
            root_size_gib,
            snapshot_id: SnapshotId::generate(),
            builtin: Some(id.to_string()),
            imds_support: None,
            boot_mode: None,
            tags: Tags::default(),
            id,
        };
        image.tags = crate::tags::from_list(&tags, image.id.as_str())?;
        Ok(image)
    }

    /// The callback that marks a background-made image available or failed.
    fn image_done(&self, id: ImageId) -> crate::runtime::ImageDone {
        let store = self.store.clone();
        Box::new(move |result: std::result::Result<Option<u64>, String>| {
            let update = || -> Result<()> {
                let mut tx = store.write()?;
                if let Some(mut image) = tx.load::<Image>(id.as_str())? {
                    image.state = if result.is_ok() { "available" } else { "failed" }.into();
                    // The root volume is as large as the disk really is (a
                    // launch may ask for more, never for less).
                    if let Ok(Some(bytes)) = result {
                        image.root_size_gib = bytes.div_ceil(1 << 30).max(1) as u32;
                    }
                    tx.save(&image)?;
                }
                tx.commit()
            };
            if let Err(e) = &result {
                tracing::warn!(image = %id, error = %e, "making an image failed");
            }
            if let Err(e) = update() {
                tracing::error!(image = %id, error = %e, "could not record the end of an image build");
            }
        })
    }

    /// `CreateImage`: a new AMI from an instance's root volume. The instance
    /// must be stopped, or running with `NoReboot` (a crash-consistent copy).
    pub fn create_image(&self, ctx: &Ctx, req: CreateImage) -> Result<ImageId> {
        let Some(instance_id) = req.instance_id.clone() else { return Err(Error::MissingParameter("InstanceId".into())) };
        let Some(name) = req.name.clone() else { return Err(Error::MissingParameter("Name".into())) };
        let mut tx = self.begin(ctx)?;
        let inst = self.load_instance(tx.as_ref(), ctx, &instance_id)?;
        use crate::lifecycle::InstanceState;
        let ok = inst.state == InstanceState::Stopped || (inst.state == InstanceState::Running && req.no_reboot);
        if !ok {
            return Err(Error::IncorrectInstanceStateMsg(format!(
                "The instance '{instance_id}' must be stopped, or running with NoReboot, to make an image of it (it is {}).",
                inst.state.name()
            )));
        }
        let source = tx.load::<Image>(inst.image_id.as_str())?.and_then(|i| i.builtin).ok_or_else(|| {
            Error::ImageUnavailable(format!("The image {} that {instance_id} was launched from is gone from this host", inst.image_id))
        })?;
        let root = inst.block_devices.iter().find(|d| d.root).map(|d| d.size_gib).unwrap_or(8);
        let draft = ImageDraft {
            name: &name,
            description: req.description.clone().unwrap_or_default(),
            root_size_gib: root,
            root_device_name: inst.root_device_name.clone(),
            tag_specs: &req.tag_specs,
        };
        let image = self.new_private_image(tx.as_ref(), ctx, draft)?;
        let key = image.id.to_string();
        tx.save(&image)?;
        tx.commit()?;
        self.runtime.create_image(&inst.id, &source, &key, self.image_done(image.id.clone()));
        Ok(image.id)
    }

    /// `RegisterImage` from a disk file the operator placed on the host.
    pub fn register_image(&self, ctx: &Ctx, req: RegisterImage) -> Result<ImageId> {
        let Some(name) = req.name.clone() else { return Err(Error::MissingParameter("Name".into())) };
        let Some(location) = req.location.clone() else {
            return Err(Error::MissingParameter(
                "ImageLocation (a raw or qcow2 disk file in the host's import directory; snapshots are not supported yet)".into(),
            ));
        };
        if let Some(a) = &req.architecture {
            if a != "x86_64" {
                return Err(Error::invalid_value("Architecture", a, "Strato hosts run x86_64 images."));
            }
        }
        let mut tx = self.begin(ctx)?;
        let draft = ImageDraft {
            name: &name,
            description: req.description.clone().unwrap_or_default(),
            root_size_gib: 8,
            root_device_name: req.root_device_name.clone().unwrap_or_else(|| "/dev/xvda".into()),
            tag_specs: &req.tag_specs,
        };
        let mut image = self.new_private_image(tx.as_ref(), ctx, draft)?;
        image.imds_support = req.imds_support.clone();
        image.boot_mode = req.boot_mode.clone();
        let key = image.id.to_string();
        tx.save(&image)?;
        tx.commit()?;
        // The runtime is asked only after the commit (it may report back at
        // once); a location it refuses unwinds the image, leaving nothing.
        if let Err(e) = self.runtime.register_image(&location, &key, self.image_done(image.id.clone())) {
            let mut tx = self.store.write()?;
            tx.remove(&image)?;
            tx.commit()?;
            return Err(Error::InvalidParameterValue(e.to_string()));
        }
        Ok(image.id)
    }

    pub fn deregister_image(&self, ctx: &Ctx, id: &ImageId) -> Result<()> {
        let mut tx = self.store.write()?;
        let image = self.visible_image(tx.as_ref(), ctx, id)?;
        if image.owner != ctx.account {
            return Err(Error::NotAuthorized(format!("Not authorized for image:{id}")));
        }
        tx.remove(&image)?;
        tx.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_ids_are_stable_and_per_region() {
        let a = builtin_image_id("minimal", "us-east-1");
        assert_eq!(a, builtin_image_id("minimal", "us-east-1"));
        assert_ne!(a, builtin_image_id("minimal", "ap-northeast-2"));
        assert_ne!(a, builtin_image_id("debian-12", "us-east-1"));
        assert!(ImageId::parse(a.as_str()).is_ok());
    }
}
