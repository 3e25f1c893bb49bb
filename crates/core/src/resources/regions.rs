//! `DescribeRegions` and `DescribeAvailabilityZones`.

use crate::error::{Error, Result};
use crate::filter::{self, Filter};
use crate::regions::{self, RegionInfo, Zone};
use crate::service::{Ctx, Ec2};

#[derive(Clone, Debug, Default)]
pub struct DescribeRegions {
    pub region_names: Vec<String>,
    pub filters: Vec<Filter>,
    pub all_regions: bool,
}

#[derive(Clone, Debug, Default)]
pub struct DescribeAvailabilityZones {
    pub zone_names: Vec<String>,
    pub zone_ids: Vec<String>,
    pub filters: Vec<Filter>,
    pub all_zones: bool,
}

impl Ec2 {
    pub fn describe_regions(&self, ctx: &Ctx, req: DescribeRegions) -> Result<Vec<RegionInfo>> {
        filter::check::<RegionInfo>(&req.filters)?;
        if let Some(bad) = req.region_names.iter().find(|n| !self.serves_region(n)) {
            return Err(Error::InvalidParameterValue(format!("Invalid region: {bad}")));
        }
        Ok(self
            .config
            .regions
            .iter()
            .filter(|r| req.region_names.is_empty() || req.region_names.contains(r))
            .map(|r| RegionInfo { name: r.clone(), endpoint: ctx.host.clone() })
            .filter(|r| filter::matches(r, &req.filters))
            .collect())
    }

    pub fn describe_availability_zones(&self, ctx: &Ctx, req: DescribeAvailabilityZones) -> Result<Vec<Zone>> {
        filter::check::<Zone>(&req.filters)?;
        let zones = regions::zones(ctx.region.as_str());
        for n in &req.zone_names {
            if !zones.iter().any(|z| &z.name == n) {
                return Err(Error::InvalidParameterValue(format!("The zone '{n}' does not exist.")));
            }
        }
        for n in &req.zone_ids {
            if !zones.iter().any(|z| &z.zone_id == n) {
                return Err(Error::InvalidParameterValue(format!("The zone ID '{n}' does not exist.")));
            }
        }
        Ok(zones
            .into_iter()
            .filter(|z| req.zone_names.is_empty() || req.zone_names.contains(&z.name))
            .filter(|z| req.zone_ids.is_empty() || req.zone_ids.contains(&z.zone_id))
            .filter(|z| filter::matches(z, &req.filters))
            .collect())
    }
}
