//! CreateImage, RegisterImage, DescribeImages, DescribeImageAttribute,
//! DeregisterImage.

use strato_core::ids::{ImageId, InstanceId};
use strato_core::resources::images::{CreateImage, DescribeImages, Image, ImageAttributeName, RegisterImage};

use super::common::{next_token, return_true, tag_set};
use crate::xml::Xml;
use crate::{ApiError, Call};

fn block_device_mapping(x: &mut Xml, i: &Image) {
    x.list("blockDeviceMapping", [i], |x, i| {
        x.leaf("deviceName", &i.root_device_name);
        x.node("ebs", |x| {
            x.leaf("snapshotId", &i.snapshot_id);
            x.leaf("volumeSize", i.root_size_gib);
            x.bool("deleteOnTermination", true);
            x.leaf("volumeType", "gp3");
            x.bool("encrypted", false);
        });
    });
}

fn render_image(x: &mut Xml, i: &Image) {
    x.leaf("imageId", &i.id);
    x.leaf("imageLocation", i.location());
    x.leaf("imageState", &i.state);
    x.leaf("imageOwnerId", &i.owner);
    x.leaf("creationDate", i.created.iso());
    x.bool("isPublic", i.public);
    x.leaf("architecture", &i.architecture);
    x.leaf("imageType", "machine");
    x.opt("imageOwnerAlias", i.owner_alias.as_ref());
    x.leaf("name", &i.name);
    x.leaf("description", &i.description);
    x.leaf("rootDeviceType", "ebs");
    x.leaf("rootDeviceName", &i.root_device_name);
    block_device_mapping(x, i);
    x.leaf("virtualizationType", "hvm");
    tag_set(x, &i.tags);
    x.leaf("hypervisor", "xen");
    x.bool("enaSupport", true);
    x.leaf("sriovNetSupport", "simple");
    x.opt("bootMode", i.boot_mode.as_ref());
    x.opt("imdsSupport", i.imds_support.as_ref());
    x.leaf("platformDetails", "Linux/UNIX");
    x.leaf("usageOperation", "RunInstances");
    x.leaf("deregistrationProtection", "disabled");
}

pub fn describe_images(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeImages {
        image_ids: c.p.ids("ImageId", ImageId::parse)?,
        owners: c.p.strings("Owner")?,
        executable_users: c.p.strings("ExecutableBy")?,
        filters: c.p.filters()?,
        page: c.p.page()?,
    };
    let _ = c.p.bool("IncludeDeprecated")?;
    let _ = c.p.bool("IncludeDisabled")?;
    c.ready()?;
    let (images, next) = c.ec2.describe_images(&c.ctx, req)?;
    c.xml.list("imagesSet", images.iter(), render_image);
    next_token(&mut c.xml, next);
    Ok(())
}

pub fn describe_image_attribute(c: &mut Call<'_>) -> Result<(), ApiError> {
    let id = c.p.required_id("ImageId", ImageId::parse)?;
    let attr = ImageAttributeName::parse(&c.p.required("Attribute")?)?;
    c.ready()?;
    let image = c.ec2.describe_image_attribute(&c.ctx, &id, attr)?;
    let x = &mut c.xml;
    x.leaf("imageId", &image.id);
    match attr {
        ImageAttributeName::Description => x.value("description", &image.description),
        ImageAttributeName::Kernel => x.node("kernel", |_| {}),
        ImageAttributeName::Ramdisk => x.node("ramdisk", |_| {}),
        ImageAttributeName::LaunchPermission => {
            x.list("launchPermission", image.public.then_some("all"), |x, g| x.leaf("group", g));
        }
        ImageAttributeName::ProductCodes => x.list("productCodes", Vec::<()>::new(), |_, _| {}),
        ImageAttributeName::BlockDeviceMapping => block_device_mapping(x, &image),
        ImageAttributeName::SriovNetSupport => x.value("sriovNetSupport", "simple"),
        ImageAttributeName::BootMode => x.value("bootMode", image.boot_mode.as_deref().unwrap_or("legacy-bios")),
        ImageAttributeName::ImdsSupport => match &image.imds_support {
            Some(v) => x.value("imdsSupport", v),
            None => x.node("imdsSupport", |_| {}),
        },
        ImageAttributeName::LastLaunchedTime => x.node("lastLaunchedTime", |_| {}),
        ImageAttributeName::DeregistrationProtection => x.value("deregistrationProtection", "disabled"),
    }
    Ok(())
}

pub fn deregister_image(c: &mut Call<'_>) -> Result<(), ApiError> {
    let id = c.p.required_id("ImageId", ImageId::parse)?;
    let _ = c.p.bool("DeleteAssociatedSnapshots")?;
    c.ready()?;
    c.ec2.deregister_image(&c.ctx, &id)?;
    return_true(&mut c.xml);
    Ok(())
}

pub fn create_image(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = CreateImage {
        instance_id: c.p.id("InstanceId", InstanceId::parse)?,
        name: c.p.string("Name"),
        description: c.p.string("Description"),
        no_reboot: c.p.bool("NoReboot")?.unwrap_or(false),
        tag_specs: c.p.tag_specs()?,
    };
    c.ready()?;
    let id = c.ec2.create_image(&c.ctx, req)?;
    c.xml.leaf("imageId", &id);
    Ok(())
}

pub fn register_image(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = RegisterImage {
        name: c.p.string("Name"),
        description: c.p.string("Description"),
        location: c.p.string("ImageLocation"),
        architecture: c.p.string("Architecture"),
        root_device_name: c.p.string("RootDeviceName"),
        boot_mode: c.p.string("BootMode"),
        imds_support: c.p.string("ImdsSupport"),
        tag_specs: c.p.tag_specs()?,
    };
    // Every Strato image is an HVM image; say so rather than ignore a
    // request for something else.
    if let Some(v) = c.p.string("VirtualizationType") {
        if v != "hvm" {
            return Err(strato_core::Error::invalid_value("VirtualizationType", &v, "Strato runs hvm images only.").into());
        }
    }
    c.ready()?;
    let id = c.ec2.register_image(&c.ctx, req)?;
    c.xml.leaf("imageId", &id);
    Ok(())
}
