//! `Filter.N.Name` / `Filter.N.Value.M` matching and `MaxResults`/`NextToken`
//! pagination, shared by every `Describe*` action.
//!
//! A resource takes part by implementing [`Filterable`]: it names the filters it
//! understands and yields its values for one of them. Tag filters (`tag:KEY`,
//! `tag-key`, `tag-value`) are handled here once for all resources. A filter name
//! a resource doesn't know is refused before anything is matched, as AWS does.

use std::borrow::Cow;

use base64::Engine;

use crate::error::{Error, Result};
use crate::tags::Tags;

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

pub trait Filterable {
    /// Filter names this resource understands, not counting the tag filters.
    const FILTERS: &'static [&'static str];

    /// This resource's values for a filter named in `FILTERS`.
    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>>;

    /// This resource's tags, for `tag:KEY`, `tag-key` and `tag-value`.
    fn tags(&self) -> Option<&Tags> {
        None
    }
}

/// Refuses filter names the resource doesn't know, before any matching.
pub fn check<T: Filterable>(filters: &[Filter]) -> Result<()> {
    for f in filters {
        let tag_filter = f.name.starts_with("tag:") || f.name == "tag-key" || f.name == "tag-value";
        if !(T::FILTERS.contains(&f.name.as_str()) || tag_filter) {
            return Err(Error::InvalidFilter(f.name.clone()));
        }
    }
    Ok(())
}

/// All filters must match (AND); within one filter any value may match (OR).
pub fn matches<T: Filterable>(item: &T, filters: &[Filter]) -> bool {
    filters.iter().all(|f| {
        let values: Vec<Cow<'_, str>> = if let Some(key) = f.name.strip_prefix("tag:") {
            item.tags().and_then(|t| t.get(key)).map(|v| vec![Cow::Borrowed(v)]).unwrap_or_default()
        } else if f.name == "tag-key" {
            item.tags().map(|t| t.iter().map(|(k, _)| Cow::Borrowed(k.as_str())).collect()).unwrap_or_default()
        } else if f.name == "tag-value" {
            item.tags().map(|t| t.iter().map(|(_, v)| Cow::Borrowed(v.as_str())).collect()).unwrap_or_default()
        } else {
            item.filter_values(&f.name)
        };
        values.iter().any(|v| f.values.iter().any(|pat| wildcard(pat, v)))
    })
}

/// EC2 filter patterns: `*` is any run, `?` any one character, `\` escapes.
pub fn wildcard(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    // Iterative matcher with one backtrack point: linear in practice and immune
    // to the exponential blow-up a recursive matcher has on `*a*a*a…` patterns.
    let (mut pi, mut vi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, vi));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    vi += 1;
                    continue;
                }
                '\\' if pi + 1 < p.len() && p[pi + 1] == v[vi] => {
                    pi += 2;
                    vi += 1;
                    continue;
                }
                c if c != '\\' && c == v[vi] => {
                    pi += 1;
                    vi += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sv)) => {
                pi = sp + 1;
                vi = sv + 1;
                star = Some((sp, sv + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// A page request: `MaxResults` and `NextToken` as given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Page {
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

impl Page {
    /// Checks `MaxResults` against the action's documented range.
    pub fn validate(&self, min: i64, max: i64) -> Result<()> {
        if let Some(m) = self.max_results {
            if m < min || m > max {
                return Err(Error::InvalidParameterValue(format!(
                    "Value ( {m} ) for parameter maxResults is invalid. Parameter must be between {min} and {max}."
                )));
            }
        }
        Ok(())
    }

    fn offset(&self) -> Result<usize> {
        let Some(tok) = &self.next_token else { return Ok(0) };
        let bad = || Error::InvalidPaginationToken(format!("'{tok}' is not a token this service issued"));
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tok).map_err(|_| bad())?;
        let s = String::from_utf8(raw).map_err(|_| bad())?;
        s.strip_prefix("strato:o:").and_then(|n| n.parse().ok()).ok_or_else(bad)
    }

    /// Cuts one page out of the full, stably ordered result.
    pub fn apply<T>(&self, items: Vec<T>) -> Result<(Vec<T>, Option<String>)> {
        let offset = self.offset()?;
        let Some(max) = self.max_results else {
            return Ok((items.into_iter().skip(offset).collect(), None));
        };
        let total = items.len();
        let end = offset.saturating_add(max as usize);
        let page: Vec<T> = items.into_iter().skip(offset).take(max as usize).collect();
        let next = (end < total).then(|| token(end));
        Ok((page, next))
    }
}

fn token(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("strato:o:{offset}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("*", ""));
        assert!(wildcard("web-*", "web-01"));
        assert!(!wildcard("web-*", "db-01"));
        assert!(wildcard("w?b", "web"));
        assert!(!wildcard("w?b", "wb"));
        assert!(wildcard("*a*b*", "xxaxxbxx"));
        assert!(wildcard(r"a\*b", "a*b"));
        assert!(!wildcard(r"a\*b", "axb"));
        assert!(wildcard("exact", "exact"));
        assert!(!wildcard("exact", "exactly"));
        assert!(!wildcard(&"*a".repeat(30), &"a".repeat(20)));
    }

    struct Thing(&'static str, Tags);
    impl Filterable for Thing {
        const FILTERS: &'static [&'static str] = &["name"];
        fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
            match name {
                "name" => vec![Cow::Borrowed(self.0)],
                _ => vec![],
            }
        }
        fn tags(&self) -> Option<&Tags> {
            Some(&self.1)
        }
    }

    #[test]
    fn filters_and_tags() {
        let mut tags = Tags::default();
        tags.0.insert("Env".into(), "prod".into());
        let t = Thing("alpha", tags);
        let f = |n: &str, v: &[&str]| Filter { name: n.into(), values: v.iter().map(|s| s.to_string()).collect() };
        assert!(matches(&t, &[f("name", &["beta", "al*"])]));
        assert!(!matches(&t, &[f("name", &["beta"])]));
        assert!(matches(&t, &[f("tag:Env", &["prod"]), f("tag-key", &["Env"])]));
        assert!(!matches(&t, &[f("tag:Env", &["dev"])]));
        assert!(!matches(&t, &[f("tag:Missing", &["*"])]));
        assert!(check::<Thing>(&[f("name", &["x"]), f("tag:a", &["b"])]).is_ok());
        assert!(matches!(check::<Thing>(&[f("bogus", &["x"])]), Err(Error::InvalidFilter(n)) if n == "bogus"));
    }

    #[test]
    fn pages_cover_everything_once() {
        let items: Vec<u32> = (0..23).collect();
        let mut page = Page { max_results: Some(5), next_token: None };
        let mut seen = vec![];
        loop {
            let (got, next) = page.apply(items.clone()).expect("page");
            seen.extend(got);
            match next {
                Some(t) => page.next_token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, items);
        let bad = Page { max_results: Some(5), next_token: Some("garbage!".into()) };
        assert!(matches!(bad.apply(items), Err(Error::InvalidPaginationToken(_))));
        assert!(Page { max_results: Some(4), next_token: None }.validate(5, 1000).is_err());
    }
}
