//! `CreateTags`, `DeleteTags` and `DescribeTags` across every kind of resource.
//!
//! Tags live inside the resource they belong to; these actions find the
//! resource from its id's prefix and edit its tag set in place. Rules, volumes
//! and network interfaces are held inside their group or instance, so they are
//! looked up there.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::filter::{self, Filter, Filterable, Page};
use crate::ids::ResourceKind;
use crate::resources::addresses::Address;
use crate::resources::images::Image;
use crate::resources::instances::Instance;
use crate::resources::internet_gateways::InternetGateway;
use crate::resources::key_pairs::KeyPair;
use crate::resources::route_tables::RouteTable;
use crate::resources::security_groups::SecurityGroup;
use crate::resources::subnets::Subnet;
use crate::resources::vpcs::Vpc;
use crate::service::{Ctx, Ec2};
use crate::store::{Resource, TxExt, WriteTx, WriteTxExt};
use crate::tags::{self, Tag, Tags};

/// One row of `DescribeTags`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagDescription {
    pub resource_id: String,
    pub resource_type: &'static str,
    pub key: String,
    pub value: String,
}

impl Filterable for TagDescription {
    const FILTERS: &'static [&'static str] = &["key", "value", "resource-id", "resource-type"];
    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        match name {
            "key" => vec![Cow::Borrowed(self.key.as_str())],
            "value" => vec![Cow::Borrowed(self.value.as_str())],
            "resource-id" => vec![Cow::Borrowed(self.resource_id.as_str())],
            "resource-type" => vec![Cow::Borrowed(self.resource_type)],
            _ => vec![],
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct DescribeTags {
    pub filters: Vec<Filter>,
    pub page: Page,
}

/// The tag change one request makes to each resource.
#[derive(Clone, Copy)]
enum Edit<'a> {
    Add(&'a [Tag]),
    Remove(&'a [(String, Option<String>)]),
}

fn apply(tags: &mut Tags, edit: Edit<'_>, id: &str) -> Result<()> {
    match edit {
        Edit::Add(list) => tags.apply(list, id),
        Edit::Remove(list) => {
            if list.is_empty() {
                tags.0.clear();
            }
            for (k, v) in list {
                tags.remove(k, v.as_deref());
            }
            Ok(())
        }
    }
}

/// Loads, edits and saves a resource stored as its own document.
fn edit_doc<R: Resource>(tx: &mut dyn WriteTx, ctx: &Ctx, id: &str, kind: ResourceKind, f: impl FnOnce(&mut R) -> Result<()>) -> Result<()> {
    let mut r = tx
        .load_owned::<R>(id, &ctx.account, &ctx.region)?
        .ok_or_else(|| Error::not_found(kind, id))?;
    f(&mut r)?;
    tx.save(&r)
}

impl Ec2 {
    fn edit_tags(&self, tx: &mut dyn WriteTx, ctx: &Ctx, id: &str, edit: Edit<'_>) -> Result<()> {
        let kind = ResourceKind::of_id(id).ok_or_else(|| Error::InvalidId(id.to_string()))?;
        match kind {
            ResourceKind::Instance => edit_doc::<Instance>(tx, ctx, id, kind, |r| apply(&mut r.tags, edit, id)),
            ResourceKind::Vpc => edit_doc::<Vpc>(tx, ctx, id, kind, |r| apply(&mut r.tags, edit, id)),
            ResourceKind::Subnet => edit_doc::<Subnet>(tx, ctx, id, kind, |r| apply(&mut r.tags, edit, id)),
            ResourceKind::SecurityGroup => edit_doc::<SecurityGroup>(tx, ctx, id, kind, |r| apply(&mut r.tags, edit, id)),
            ResourceKind::KeyPair => edit_doc::<KeyPair>(tx, ctx, id, kind, |r| apply(&mut r.tags, edit, id)),
            ResourceKind::RouteTable => edit_doc::<RouteTable>(tx, ctx, id, kind, |r| apply(&mut r.tags, edit, id)),
            ResourceKind::InternetGateway => edit_doc::<InternetGateway>(tx, ctx, id, kind, |r| apply(&mut r.tags, edit, id)),
            ResourceKind::ElasticIp => edit_doc::<Address>(tx, ctx, id, kind, |r| apply(&mut r.tags, edit, id)),
            ResourceKind::Image => {
                let mut image = self.visible_image(&*tx, ctx, &crate::ids::ImageId::parse(id)?)?;
                if image.owner != ctx.account {
                    return Err(Error::NotAuthorized(format!("Not authorized for image:{id}")));
                }
                apply(&mut image.tags, edit, id)?;
                tx.save(&image)
            }
            ResourceKind::SecurityGroupRule => {
                for mut g in tx.list_of::<SecurityGroup>(&ctx.account, &ctx.region)? {
                    if let Some(rule) = g.ingress.iter_mut().chain(g.egress.iter_mut()).find(|r| r.id.as_str() == id) {
                        apply(&mut rule.tags, edit, id)?;
                        return tx.save(&g);
                    }
                }
                Err(Error::not_found(kind, id))
            }
            ResourceKind::Volume | ResourceKind::NetworkInterface => {
                for mut i in tx.list_of::<Instance>(&ctx.account, &ctx.region)? {
                    if !i.state.holds_resources() {
                        continue;
                    }
                    if i.eni_id.as_str() == id {
                        apply(&mut i.eni_tags, edit, id)?;
                        return tx.save(&i);
                    }
                    if let Some(d) = i.block_devices.iter_mut().find(|d| d.volume_id.as_str() == id) {
                        apply(&mut d.tags, edit, id)?;
                        return tx.save(&i);
                    }
                }
                Err(Error::not_found(kind, id))
            }
            _ => Err(Error::InvalidId(id.to_string())),
        }
    }

    pub fn create_tags(&self, ctx: &Ctx, resource_ids: &[String], tag_list: &[Tag]) -> Result<()> {
        if resource_ids.is_empty() {
            return Err(Error::MissingParameter("ResourceId".into()));
        }
        if tag_list.is_empty() {
            return Err(Error::MissingParameter("Tag".into()));
        }
        tags::validate(tag_list)?;
        let mut tx = self.begin(ctx)?;
        for id in resource_ids {
            self.edit_tags(tx.as_mut(), ctx, id, Edit::Add(tag_list))?;
        }
        tx.commit()
    }

    /// `keys` pairs a key with an optional value; an empty list removes all tags.
    pub fn delete_tags(&self, ctx: &Ctx, resource_ids: &[String], keys: &[(String, Option<String>)]) -> Result<()> {
        if resource_ids.is_empty() {
            return Err(Error::MissingParameter("ResourceId".into()));
        }
        if keys.iter().any(|(k, _)| k.to_ascii_lowercase().starts_with("aws:")) {
            return Err(Error::InvalidParameterValue("Tag keys starting with 'aws:' are reserved for internal use".into()));
        }
        let mut tx = self.begin(ctx)?;
        for id in resource_ids {
            self.edit_tags(tx.as_mut(), ctx, id, Edit::Remove(keys))?;
        }
        tx.commit()
    }

    pub fn describe_tags(&self, ctx: &Ctx, req: DescribeTags) -> Result<(Vec<TagDescription>, Option<String>)> {
        filter::check::<TagDescription>(&req.filters)?;
        req.page.validate(5, 1000)?;
        self.ensure_scope(ctx)?;
        let tx = self.store.read()?;
        let mut rows = Vec::new();
        let mut add = |id: &str, kind: ResourceKind, tags: &Tags| {
            for (k, v) in tags.iter() {
                rows.push(TagDescription { resource_id: id.to_string(), resource_type: kind.resource_type(), key: k.clone(), value: v.clone() });
            }
        };
        let (a, r) = (&ctx.account, &ctx.region);
        for i in tx.list_of::<Instance>(a, r)? {
            add(i.id.as_str(), ResourceKind::Instance, &i.tags);
            if i.state.holds_resources() {
                add(i.eni_id.as_str(), ResourceKind::NetworkInterface, &i.eni_tags);
                for d in &i.block_devices {
                    add(d.volume_id.as_str(), ResourceKind::Volume, &d.tags);
                }
            }
        }
        for x in tx.list_of::<Image>(a, r)? {
            add(x.id.as_str(), ResourceKind::Image, &x.tags);
        }
        for x in tx.list_of::<KeyPair>(a, r)? {
            add(x.id.as_str(), ResourceKind::KeyPair, &x.tags);
        }
        for x in tx.list_of::<Vpc>(a, r)? {
            add(x.id.as_str(), ResourceKind::Vpc, &x.tags);
        }
        for x in tx.list_of::<Subnet>(a, r)? {
            add(x.id.as_str(), ResourceKind::Subnet, &x.tags);
        }
        for x in tx.list_of::<SecurityGroup>(a, r)? {
            add(x.id.as_str(), ResourceKind::SecurityGroup, &x.tags);
            for rule in x.ingress.iter().chain(x.egress.iter()) {
                add(rule.id.as_str(), ResourceKind::SecurityGroupRule, &rule.tags);
            }
        }
        for x in tx.list_of::<RouteTable>(a, r)? {
            add(x.id.as_str(), ResourceKind::RouteTable, &x.tags);
        }
        for x in tx.list_of::<InternetGateway>(a, r)? {
            add(x.id.as_str(), ResourceKind::InternetGateway, &x.tags);
        }
        for x in tx.list_of::<Address>(a, r)? {
            add(x.id.as_str(), ResourceKind::ElasticIp, &x.tags);
        }
        let picked = rows.into_iter().filter(|t| filter::matches(t, &req.filters)).collect();
        req.page.apply(picked)
    }
}

