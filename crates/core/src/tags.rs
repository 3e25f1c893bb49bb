//! Tags: the key/value pairs every resource carries, their limits, and the
//! `TagSpecification` that applies them at creation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Limit, Result};
use crate::ids::ResourceKind;

/// AWS's per-resource tag limits.
pub const MAX_TAGS: usize = 50;
pub const MAX_KEY_LEN: usize = 128;
pub const MAX_VALUE_LEN: usize = 256;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tags(pub BTreeMap<String, String>);

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// `TagSpecification.N`: which kind of resource the tags are for, and the tags.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TagSpecification {
    pub resource_type: String,
    pub tags: Vec<Tag>,
}

impl Tags {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds or overwrites tags, keeping the per-resource limit.
    pub fn apply(&mut self, tags: &[Tag], resource_id: &str) -> Result<()> {
        let mut next = self.0.clone();
        for t in tags {
            next.insert(t.key.clone(), t.value.clone());
        }
        if next.len() > MAX_TAGS {
            return Err(Error::LimitExceeded {
                limit: Limit::Tags,
                message: format!("The maximum number of tags ({MAX_TAGS}) for resource '{resource_id}' has been reached."),
            });
        }
        self.0 = next;
        Ok(())
    }

    /// `DeleteTags`: a tag given with a value is removed only if the value matches.
    pub fn remove(&mut self, key: &str, value: Option<&str>) {
        let matches = match (self.0.get(key), value) {
            (Some(_), None) => true,
            (Some(v), Some(want)) => v == want,
            (None, _) => false,
        };
        if matches {
            self.0.remove(key);
        }
    }
}

/// Checks the form of tags given by a client (`CreateTags`, `TagSpecification`).
pub fn validate(tags: &[Tag]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::LimitExceeded {
            limit: Limit::Tags,
            message: format!("The maximum number of tags per request is {MAX_TAGS}."),
        });
    }
    for t in tags {
        if t.key.is_empty() {
            return Err(Error::InvalidParameterValue("Tag keys must not be empty".into()));
        }
        if t.key.chars().count() > MAX_KEY_LEN {
            return Err(Error::InvalidParameterValue(format!(
                "Tag key exceeds the maximum length of {MAX_KEY_LEN} characters"
            )));
        }
        if t.value.chars().count() > MAX_VALUE_LEN {
            return Err(Error::InvalidParameterValue(format!(
                "Tag value exceeds the maximum length of {MAX_VALUE_LEN} characters"
            )));
        }
        if t.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(Error::InvalidParameterValue(
                "Tag keys starting with 'aws:' are reserved for internal use".into(),
            ));
        }
    }
    Ok(())
}

/// The tags that a list of `TagSpecification`s gives to a resource of `kind`.
/// A specification for a resource type the action does not create is an error.
pub fn for_kind(specs: &[TagSpecification], kind: ResourceKind, allowed: &[ResourceKind]) -> Result<Vec<Tag>> {
    let mut out = Vec::new();
    for s in specs {
        let Some(k) = ResourceKind::from_resource_type(&s.resource_type) else {
            return Err(Error::InvalidParameterValue(format!(
                "'{}' is not a valid taggable resource type.",
                s.resource_type
            )));
        };
        if !allowed.contains(&k) {
            return Err(Error::InvalidParameterValue(format!(
                "'{}' is not a valid taggable resource type for this operation.",
                s.resource_type
            )));
        }
        validate(&s.tags)?;
        if k == kind {
            out.extend(s.tags.iter().cloned());
        }
    }
    Ok(out)
}

/// Builds a fresh tag set from a creation request's tags.
pub fn from_list(tags: &[Tag], resource_id: &str) -> Result<Tags> {
    let mut t = Tags::default();
    t.apply(tags, resource_id)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag { key: k.into(), value: v.into() }
    }

    #[test]
    fn reserved_and_oversized_tags_are_refused() {
        assert!(validate(&[tag("aws:foo", "x")]).is_err());
        assert!(validate(&[tag("", "x")]).is_err());
        assert!(validate(&[tag(&"k".repeat(129), "x")]).is_err());
        assert!(validate(&[tag("k", &"v".repeat(257))]).is_err());
        assert!(validate(&[tag("Name", "web")]).is_ok());
    }

    #[test]
    fn delete_with_value_only_removes_a_match() {
        let mut t = Tags::default();
        t.apply(&[tag("a", "1"), tag("b", "2")], "i-1").expect("ok");
        t.remove("a", Some("nope"));
        assert_eq!(t.get("a"), Some("1"));
        t.remove("a", Some("1"));
        t.remove("b", None);
        assert!(t.is_empty());
    }

    #[test]
    fn the_fifty_first_tag_is_refused() {
        let mut t = Tags::default();
        let many: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
        t.apply(&many, "i-1").expect("fifty fit");
        assert!(t.apply(&[tag("one-more", "v")], "i-1").is_err());
        assert!(t.apply(&[tag("k3", "overwrite")], "i-1").is_ok());
    }

    #[test]
    fn specs_pick_the_tags_for_one_kind() {
        let specs = vec![
            TagSpecification { resource_type: "instance".into(), tags: vec![tag("Name", "a")] },
            TagSpecification { resource_type: "volume".into(), tags: vec![tag("Disk", "b")] },
        ];
        let allowed = [ResourceKind::Instance, ResourceKind::Volume];
        assert_eq!(for_kind(&specs, ResourceKind::Instance, &allowed).expect("ok"), vec![tag("Name", "a")]);
        assert!(for_kind(&specs, ResourceKind::Instance, &[ResourceKind::Instance]).is_err());
    }
}
