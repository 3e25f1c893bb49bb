//! `DescribeInstanceTypes` and `DescribeInstanceTypeOfferings`, over the
//! catalogue in `crate::instance_types`.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::filter::{self, Filter, Filterable, Page};
use crate::instance_types::{self, InstanceType, CATALOG};
use crate::regions;
use crate::service::{Ctx, Ec2};

#[derive(Clone, Debug, Default)]
pub struct DescribeInstanceTypes {
    pub instance_types: Vec<String>,
    pub filters: Vec<Filter>,
    pub page: Page,
}

#[derive(Clone, Debug, Default)]
pub struct DescribeInstanceTypeOfferings {
    pub location_type: Option<String>,
    pub filters: Vec<Filter>,
    pub page: Page,
}

/// One row of `instanceTypeOfferingSet`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offering {
    pub instance_type: &'static str,
    pub location_type: String,
    pub location: String,
}

impl Filterable for Offering {
    const FILTERS: &'static [&'static str] = &["location", "instance-type"];
    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        match name {
            "location" => vec![Cow::Borrowed(self.location.as_str())],
            "instance-type" => vec![Cow::Borrowed(self.instance_type)],
            _ => vec![],
        }
    }
}

impl Ec2 {
    pub fn describe_instance_types(&self, _ctx: &Ctx, req: DescribeInstanceTypes) -> Result<(Vec<&'static InstanceType>, Option<String>)> {
        filter::check::<InstanceType>(&req.filters)?;
        req.page.validate(5, 100)?;
        let unknown: Vec<&String> = req.instance_types.iter().filter(|t| instance_types::lookup(t).is_none()).collect();
        if !unknown.is_empty() {
            return Err(Error::InvalidParameterValue(format!(
                "The following supplied instance types do not exist: [{}]",
                unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        let picked: Vec<&'static InstanceType> = CATALOG
            .iter()
            .filter(|t| req.instance_types.is_empty() || req.instance_types.iter().any(|n| n == t.name))
            .filter(|t| filter::matches(*t, &req.filters))
            .collect();
        req.page.apply(picked)
    }

    pub fn describe_instance_type_offerings(&self, ctx: &Ctx, req: DescribeInstanceTypeOfferings) -> Result<(Vec<Offering>, Option<String>)> {
        filter::check::<Offering>(&req.filters)?;
        req.page.validate(5, 1000)?;
        let location_type = req.location_type.clone().unwrap_or_else(|| "region".into());
        let locations: Vec<String> = match location_type.as_str() {
            "region" => vec![ctx.region.to_string()],
            "availability-zone" => regions::zones(ctx.region.as_str()).into_iter().map(|z| z.name).collect(),
            "availability-zone-id" => regions::zones(ctx.region.as_str()).into_iter().map(|z| z.zone_id).collect(),
            other => {
                return Err(Error::invalid_value(
                    "LocationType",
                    other,
                    "Valid values are region, availability-zone and availability-zone-id.",
                ))
            }
        };
        let mut rows = Vec::new();
        for t in CATALOG {
            for l in &locations {
                rows.push(Offering { instance_type: t.name, location_type: location_type.clone(), location: l.clone() });
            }
        }
        let picked = rows.into_iter().filter(|o| filter::matches(o, &req.filters)).collect();
        req.page.apply(picked)
    }
}
