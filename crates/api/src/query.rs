//! EC2 Query parameters: parsed once, at the edge, into typed values.
//!
//! A request's parameters are the union of its query string and, for a form
//! POST, its body. Lists are flattened (`InstanceId.1`, `InstanceId.2`) and
//! structures nest with dots (`Filter.1.Value.2`). Every accessor records the
//! names it read, so that after an action has taken what it understands, any
//! parameter left over is reported as `UnknownParameter` rather than ignored.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BTreeSet;

use strato_core::error::Error;
use strato_core::filter::{Filter, Page};
use strato_core::tags::{Tag, TagSpecification};

use crate::sigv4::percent_decode;

/// The most members a list parameter may have.
pub const MAX_LIST: usize = 1000;

/// Parameters that belong to the protocol, not to any action.
const PROTOCOL_PARAMS: &[&str] = &[
    "Action", "Version", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
    "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token",
];

type R<T> = Result<T, Error>;

/// The parameters of one request, sorted by name. Lookups compare names in
/// place (prefix and name together) so reading a parameter allocates nothing.
#[derive(Debug, Default)]
pub struct Params {
    entries: Vec<(String, String)>,
    used: RefCell<Vec<bool>>,
}

/// Orders `key` against the concatenation `a` + `b` without building it.
fn cmp_concat(key: &str, a: &str, b: &str) -> Ordering {
    let k = key.as_bytes();
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let head = k.len().min(a.len());
    match k[..head].cmp(&a[..head]) {
        Ordering::Equal => {}
        other => return other,
    }
    if k.len() < a.len() {
        return Ordering::Less;
    }
    k[a.len()..].cmp(b)
}

fn starts_with_concat(key: &str, a: &str, b: &str) -> bool {
    key.len() >= a.len() + b.len() && key.starts_with(a) && key[a.len()..].starts_with(b)
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space.
fn form_decode(s: &str) -> R<String> {
    let bytes = if s.as_bytes().iter().any(|b| *b == b'+' || *b == b'%') {
        percent_decode(&s.replace('+', " "))
    } else {
        s.as_bytes().to_vec()
    };
    String::from_utf8(bytes).map_err(|_| Error::InvalidParameterValue("Parameters must be UTF-8 text".into()))
}

impl Params {
    /// Parses one or more form-encoded sources (query string, body).
    pub fn parse(sources: &[&str]) -> R<Params> {
        let mut entries: Vec<(String, String)> = Vec::new();
        for src in sources {
            for piece in src.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
                let k = form_decode(k)?;
                let v = form_decode(v)?;
                if k.is_empty() {
                    continue;
                }
                entries.push((k, v));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::InvalidParameterValue(format!("The parameter {} was given more than once", w[0].0)));
        }
        let used = entries.iter().map(|(k, _)| PROTOCOL_PARAMS.contains(&k.as_str())).collect();
        Ok(Params { entries, used: RefCell::new(used) })
    }

    fn find(&self, prefix: &str, name: &str) -> Option<usize> {
        self.entries.binary_search_by(|(k, _)| cmp_concat(k, prefix, name)).ok()
    }

    pub fn raw(&self, name: &str) -> Option<&str> {
        self.find("", name).map(|i| self.entries[i].1.as_str())
    }

    pub fn root(&self) -> Scope<'_> {
        Scope { params: self, prefix: String::new() }
    }

    /// The first parameter no accessor asked for, if any.
    pub fn unknown(&self) -> Option<String> {
        let used = self.used.borrow();
        self.entries.iter().zip(used.iter()).find(|(_, u)| !**u).map(|((k, _), _)| k.clone())
    }

    fn take(&self, prefix: &str, name: &str) -> Option<&str> {
        let i = self.find(prefix, name)?;
        if let Some(u) = self.used.borrow_mut().get_mut(i) {
            *u = true;
        }
        Some(self.entries[i].1.as_str())
    }

    /// Entries whose names start with `prefix` + `name` + `.`, in order.
    fn under(&self, prefix: &str, name: &str) -> &[(String, String)] {
        let start = self.entries.partition_point(|(k, _)| cmp_concat(k, prefix, name) == Ordering::Less);
        let rest = &self.entries[start..];
        let end = rest.iter().position(|(k, _)| !starts_with_concat(k, prefix, name)).unwrap_or(rest.len());
        // Keep only `name.` (not `nameX`).
        let slice = &rest[..end];
        let cut = prefix.len() + name.len();
        let first = slice.iter().position(|(k, _)| k.as_bytes().get(cut) == Some(&b'.')).unwrap_or(slice.len());
        let last = slice.iter().rposition(|(k, _)| k.as_bytes().get(cut) == Some(&b'.')).map(|i| i + 1).unwrap_or(first);
        &slice[first..last.max(first)]
    }

    /// Numeric indexes `N` for which a key `prefix name.N…` exists, in numeric order.
    fn indexes(&self, prefix: &str, name: &str) -> R<Vec<u32>> {
        let cut = prefix.len() + name.len() + 1;
        let mut out = BTreeSet::new();
        for (k, _) in self.under(prefix, name) {
            if k.as_bytes().get(cut - 1) != Some(&b'.') {
                continue;
            }
            let idx = k[cut..].split('.').next().unwrap_or("");
            match idx.parse::<u32>() {
                Ok(n) if n >= 1 && idx.len() <= 5 && !idx.starts_with('+') => {
                    out.insert(n);
                }
                _ => {
                    return Err(Error::InvalidParameterValue(format!(
                        "The parameter {prefix}{name}.{idx} has an invalid index: list members are numbered from 1"
                    )))
                }
            }
            if out.len() > MAX_LIST {
                return Err(Error::InvalidParameterValue(format!("The list {prefix}{name} has more than {MAX_LIST} members")));
            }
        }
        Ok(out.into_iter().collect())
    }
}

/// A view of the parameters under a prefix (`Filter.1.`), or at the top.
#[derive(Clone)]
pub struct Scope<'a> {
    params: &'a Params,
    prefix: String,
}

impl<'a> Scope<'a> {
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Is `name` given, as a value or as a structure (`name.…`)?
    pub fn has(&self, name: &str) -> bool {
        self.params.find(&self.prefix, name).is_some() || !self.params.under(&self.prefix, name).is_empty()
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.params.take(&self.prefix, name).map(str::to_string)
    }

    pub fn required(&self, name: &str) -> R<String> {
        match self.string(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(Error::MissingParameter(self.key(name))),
        }
    }

    pub fn int(&self, name: &str) -> R<Option<i64>> {
        match self.params.take(&self.prefix, name) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                Error::InvalidParameterValue(format!("Invalid value '{v}' for {}: an integer is expected", self.key(name)))
            }),
        }
    }

    pub fn bool(&self, name: &str) -> R<Option<bool>> {
        match self.params.take(&self.prefix, name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(Error::InvalidParameterValue(format!(
                "Invalid value '{v}' for {}: true or false is expected",
                self.key(name)
            ))),
        }
    }

    /// `Name.1`, `Name.2`, … as strings.
    pub fn strings(&self, name: &str) -> R<Vec<String>> {
        let mut out = Vec::new();
        for n in self.params.indexes(&self.prefix, name)? {
            let item = format!("{name}.{n}");
            match self.params.take(&self.prefix, &item) {
                Some(v) => out.push(v.to_string()),
                None => {
                    return Err(Error::InvalidParameterValue(format!(
                        "The parameter {} must be a value, not a structure",
                        self.key(&item)
                    )))
                }
            }
        }
        Ok(out)
    }

    /// `Name.1.…`, `Name.2.…`, … as nested scopes.
    pub fn structs(&self, name: &str) -> R<Vec<Scope<'a>>> {
        let k = self.key(name);
        Ok(self
            .params
            .indexes(&self.prefix, name)?
            .into_iter()
            .map(|n| Scope { params: self.params, prefix: format!("{k}.{n}.") })
            .collect())
    }

    /// A single nested structure (`Placement.AvailabilityZone`).
    pub fn nested(&self, name: &str) -> Scope<'a> {
        Scope { params: self.params, prefix: format!("{}{name}.", self.prefix) }
    }

    /// Parses each `Name.N` with `parse`, for typed ids.
    pub fn ids<T>(&self, name: &str, parse: impl Fn(&str) -> Result<T, Error>) -> R<Vec<T>> {
        self.strings(name)?.iter().map(|s| parse(s)).collect()
    }

    pub fn id<T>(&self, name: &str, parse: impl Fn(&str) -> Result<T, Error>) -> R<Option<T>> {
        self.string(name).map(|s| parse(&s)).transpose()
    }

    pub fn required_id<T>(&self, name: &str, parse: impl Fn(&str) -> Result<T, Error>) -> R<T> {
        parse(&self.required(name)?)
    }

    /// `Filter.N.Name` / `Filter.N.Value.M`.
    pub fn filters(&self) -> R<Vec<Filter>> {
        self.structs("Filter")?
            .into_iter()
            .map(|f| Ok(Filter { name: f.required("Name")?, values: f.strings("Value")? }))
            .collect()
    }

    /// `MaxResults` and `NextToken`.
    pub fn page(&self) -> R<Page> {
        Ok(Page { max_results: self.int("MaxResults")?, next_token: self.string("NextToken").filter(|t| !t.is_empty()) })
    }

    /// `TagSpecification.N.ResourceType` / `TagSpecification.N.Tag.M.Key|Value`.
    pub fn tag_specs(&self) -> R<Vec<TagSpecification>> {
        self.structs("TagSpecification")?
            .into_iter()
            .map(|s| Ok(TagSpecification { resource_type: s.required("ResourceType")?, tags: s.tags("Tag")? }))
            .collect()
    }

    /// `Name.N.Key` / `Name.N.Value` (a missing value is the empty string).
    pub fn tags(&self, name: &str) -> R<Vec<Tag>> {
        self.structs(name)?
            .into_iter()
            .map(|t| Ok(Tag { key: t.required("Key")?, value: t.string("Value").unwrap_or_default() }))
            .collect()
    }

    /// `DryRun=true`.
    pub fn dry_run(&self) -> R<bool> {
        Ok(self.bool("DryRun")?.unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_structures() {
        let p = Params::parse(&[
            "Action=DescribeInstances&InstanceId.2=i-b&InstanceId.1=i-a&InstanceId.10=i-j&Filter.1.Name=tag%3AName&Filter.1.Value.1=web+1&Filter.1.Value.2=db",
        ])
        .expect("parse");
        let r = p.root();
        assert_eq!(r.strings("InstanceId").expect("ids"), vec!["i-a", "i-b", "i-j"]);
        let f = r.filters().expect("filters");
        assert_eq!(f, vec![Filter { name: "tag:Name".into(), values: vec!["web 1".into(), "db".into()] }]);
        assert_eq!(p.unknown(), None);
    }

    #[test]
    fn unknown_parameters_are_reported() {
        let p = Params::parse(&["Action=X&Version=1&ImageId=ami-1&Bogus=1"]).expect("parse");
        let _ = p.root().string("ImageId");
        assert_eq!(p.unknown().as_deref(), Some("Bogus"));
    }

    #[test]
    fn nested_structures() {
        let p = Params::parse(&[
            "BlockDeviceMapping.1.DeviceName=%2Fdev%2Fxvda&BlockDeviceMapping.1.Ebs.VolumeSize=20&Placement.AvailabilityZone=us-east-1a&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=x",
        ])
        .expect("parse");
        let r = p.root();
        let bdm = r.structs("BlockDeviceMapping").expect("bdm");
        assert_eq!(bdm.len(), 1);
        assert_eq!(bdm[0].string("DeviceName").as_deref(), Some("/dev/xvda"));
        assert_eq!(bdm[0].nested("Ebs").int("VolumeSize").expect("int"), Some(20));
        assert!(r.has("Placement"));
        assert_eq!(r.nested("Placement").string("AvailabilityZone").as_deref(), Some("us-east-1a"));
        let ts = r.tag_specs().expect("tags");
        assert_eq!(ts[0].tags[0], Tag { key: "Name".into(), value: "x".into() });
        assert_eq!(p.unknown(), None);
    }

    #[test]
    fn bad_values_are_client_errors() {
        let p = Params::parse(&["MaxCount=abc&DryRun=maybe&InstanceId.0=x"]).expect("parse");
        assert!(matches!(p.root().int("MaxCount"), Err(Error::InvalidParameterValue(_))));
        assert!(matches!(p.root().bool("DryRun"), Err(Error::InvalidParameterValue(_))));
        assert!(matches!(p.root().strings("InstanceId"), Err(Error::InvalidParameterValue(_))));
        assert!(Params::parse(&["A=1&A=2"]).is_err());
        assert!(Params::parse(&["A=%FF"]).is_err());
    }
}
