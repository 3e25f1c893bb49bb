//! DescribeRegions, DescribeAvailabilityZones.

use strato_core::resources::regions::{DescribeAvailabilityZones, DescribeRegions};

use crate::{ApiError, Call};

pub fn describe_regions(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeRegions {
        region_names: c.p.strings("RegionName")?,
        filters: c.p.filters()?,
        all_regions: c.p.bool("AllRegions")?.unwrap_or(false),
    };
    c.ready()?;
    let regions = c.ec2.describe_regions(&c.ctx, req)?;
    c.xml.list("regionInfo", regions, |x, r| {
        x.leaf("regionName", &r.name);
        x.leaf("regionEndpoint", &r.endpoint);
        x.leaf("optInStatus", "opt-in-not-required");
    });
    Ok(())
}

pub fn describe_availability_zones(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeAvailabilityZones {
        zone_names: c.p.strings("ZoneName")?,
        zone_ids: c.p.strings("ZoneId")?,
        filters: c.p.filters()?,
        all_zones: c.p.bool("AllAvailabilityZones")?.unwrap_or(false),
    };
    c.ready()?;
    let zones = c.ec2.describe_availability_zones(&c.ctx, req)?;
    c.xml.list("availabilityZoneInfo", zones, |x, z| {
        x.leaf("zoneName", &z.name);
        x.leaf("zoneState", "available");
        x.leaf("regionName", &z.region);
        x.leaf("zoneId", &z.zone_id);
        x.leaf("zoneType", "availability-zone");
        x.leaf("optInStatus", "opt-in-not-required");
        x.leaf("groupName", &z.region);
        x.leaf("networkBorderGroup", &z.region);
        x.list("messageSet", Vec::<()>::new(), |_, _| {});
    });
    Ok(())
}
