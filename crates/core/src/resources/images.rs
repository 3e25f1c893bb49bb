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
    /// The catalogue key of a built-in image.
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
            let Some(key) = image.builtin.clone() else { continue };
            let state = if self.runtime.image_ready(&key) { "available" } else { "pending" };
            if image.state != state {
                image.state = state.to_string();
                tx.save(&image)?;
            }
        }
        tx.commit()
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
