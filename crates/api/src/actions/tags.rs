//! CreateTags, DeleteTags, DescribeTags.

use strato_core::error::Error;
use strato_core::resources::tagging::DescribeTags;

use super::common::{next_token, return_true};
use crate::{ApiError, Call};

pub fn create_tags(c: &mut Call<'_>) -> Result<(), ApiError> {
    let ids = c.p.strings("ResourceId")?;
    let tags = c.p.tags("Tag")?;
    c.ready()?;
    c.ec2.create_tags(&c.ctx, &ids, &tags)?;
    return_true(&mut c.xml);
    Ok(())
}

pub fn delete_tags(c: &mut Call<'_>) -> Result<(), ApiError> {
    let ids = c.p.strings("ResourceId")?;
    let keys: Vec<(String, Option<String>)> = c
        .p
        .structs("Tag")?
        .into_iter()
        .map(|t| Ok((t.required("Key")?, t.string("Value"))))
        .collect::<Result<_, Error>>()?;
    c.ready()?;
    c.ec2.delete_tags(&c.ctx, &ids, &keys)?;
    return_true(&mut c.xml);
    Ok(())
}

pub fn describe_tags(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeTags { filters: c.p.filters()?, page: c.p.page()? };
    c.ready()?;
    let (rows, next) = c.ec2.describe_tags(&c.ctx, req)?;
    c.xml.list("tagSet", rows.iter(), |x, t| {
        x.leaf("resourceId", &t.resource_id);
        x.leaf("resourceType", t.resource_type);
        x.leaf("key", &t.key);
        x.leaf("value", &t.value);
    });
    next_token(&mut c.xml, next);
    Ok(())
}
