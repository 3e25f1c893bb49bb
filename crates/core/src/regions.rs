//! Served regions and their availability zones.
//!
//! By default Strato serves the AWS commercial region names; an operator may
//! narrow or change the list in the config. Every region has three zones,
//! `<region>a`, `<region>b` and `<region>c`, with zone ids in AWS's style
//! (`apne2-az1`), derived from the region name.

use std::borrow::Cow;

use crate::filter::Filterable;

pub const DEFAULT_REGIONS: &[&str] = &[
    "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    "af-south-1",
    "ap-east-1", "ap-south-1", "ap-south-2",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ca-central-1", "ca-west-1",
    "eu-central-1", "eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3",
    "eu-south-1", "eu-south-2", "eu-north-1",
    "il-central-1", "me-south-1", "me-central-1", "mx-central-1",
    "sa-east-1",
];

pub const ZONE_LETTERS: [char; 3] = ['a', 'b', 'c'];

/// Is `name` shaped like an AWS region name (`xx-word-N`)? Used to check config.
pub fn well_formed(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

/// `ap-northeast-2` → `apne2`, the stem of AWS zone ids.
pub fn zone_id_stem(region: &str) -> String {
    let parts: Vec<&str> = region.split('-').collect();
    let mut s = String::new();
    if let Some((first, rest)) = parts.split_first() {
        s.push_str(first);
        for p in rest {
            let abbrev = match *p {
                "northeast" => "ne",
                "northwest" => "nw",
                "southeast" => "se",
                "southwest" => "sw",
                "north" => "n",
                "south" => "s",
                "east" => "e",
                "west" => "w",
                "central" => "c",
                other => other,
            };
            s.push_str(abbrev);
        }
    }
    s
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    pub zone_id: String,
    pub region: String,
}

pub fn zones(region: &str) -> Vec<Zone> {
    let stem = zone_id_stem(region);
    ZONE_LETTERS
        .iter()
        .enumerate()
        .map(|(i, l)| Zone { name: format!("{region}{l}"), zone_id: format!("{stem}-az{}", i + 1), region: region.to_string() })
        .collect()
}

/// A row of `DescribeRegions`.
#[derive(Clone, Debug)]
pub struct RegionInfo {
    pub name: String,
    pub endpoint: String,
}

impl Filterable for RegionInfo {
    const FILTERS: &'static [&'static str] = &["endpoint", "region-name", "opt-in-status"];
    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        match name {
            "endpoint" => vec![Cow::Borrowed(self.endpoint.as_str())],
            "region-name" => vec![Cow::Borrowed(self.name.as_str())],
            "opt-in-status" => vec![Cow::Borrowed("opt-in-not-required")],
            _ => vec![],
        }
    }
}

impl Filterable for Zone {
    const FILTERS: &'static [&'static str] = &[
        "group-name", "message", "opt-in-status", "region-name", "state", "zone-id", "zone-name", "zone-type",
        "network-border-group",
    ];
    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        match name {
            "group-name" | "region-name" | "network-border-group" => vec![Cow::Borrowed(self.region.as_str())],
            "opt-in-status" => vec![Cow::Borrowed("opt-in-not-required")],
            "state" => vec![Cow::Borrowed("available")],
            "zone-id" => vec![Cow::Borrowed(self.zone_id.as_str())],
            "zone-name" => vec![Cow::Borrowed(self.name.as_str())],
            "zone-type" => vec![Cow::Borrowed("availability-zone")],
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_ids_follow_aws_style() {
        assert_eq!(zone_id_stem("ap-northeast-2"), "apne2");
        assert_eq!(zone_id_stem("us-east-1"), "use1");
        assert_eq!(zone_id_stem("eu-central-1"), "euc1");
        assert_eq!(zone_id_stem("ap-southeast-4"), "apse4");
        let z = zones("ap-northeast-2");
        assert_eq!(z[0].name, "ap-northeast-2a");
        assert_eq!(z[2].zone_id, "apne2-az3");
    }

    #[test]
    fn default_regions_are_well_formed() {
        for r in DEFAULT_REGIONS {
            assert!(well_formed(r), "{r}");
        }
        assert!(!well_formed("nowhere"));
        assert!(!well_formed("us-east-x"));
        assert!(!well_formed("US-east-1"));
    }
}
