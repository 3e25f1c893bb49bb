//! CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair.

use base64::Engine;
use strato_core::error::Error;
use strato_core::ids::KeyPairId;
use strato_core::resources::key_pairs::{CreateKeyPair, DescribeKeyPairs, ImportKeyPair, KeyPairRef};
use strato_core::ssh_keys::KeyType;

use super::common::{return_true, tag_set};
use crate::{ApiError, Call};

/// Key pair ids are checked for form here; EC2 reports a bad one as not found.
fn key_id(s: &str) -> Result<KeyPairId, Error> {
    KeyPairId::parse(s).map_err(|_| Error::not_found(KeyPairId::KIND, s))
}

pub fn create_key_pair(c: &mut Call<'_>) -> Result<(), ApiError> {
    let name = c.p.required("KeyName")?;
    let key_type = match c.p.string("KeyType").as_deref() {
        None | Some("rsa") => KeyType::Rsa,
        Some("ed25519") => KeyType::Ed25519,
        Some(other) => return Err(Error::invalid_value("KeyType", other, "Valid values are rsa and ed25519.").into()),
    };
    match c.p.string("KeyFormat").as_deref() {
        None | Some("pem") => {}
        Some("ppk") => return Err(Error::Unsupported("KeyFormat ppk is not supported by Strato yet; use pem".into()).into()),
        Some(other) => return Err(Error::invalid_value("KeyFormat", other, "Valid values are pem and ppk.").into()),
    }
    let tag_specs = c.p.tag_specs()?;
    c.ready()?;
    let (key, pem) = c.ec2.create_key_pair(&c.ctx, CreateKeyPair { name, key_type, tag_specs })?;
    let x = &mut c.xml;
    x.leaf("keyName", &key.name);
    x.leaf("keyFingerprint", &key.fingerprint);
    x.leaf("keyMaterial", pem);
    x.leaf("keyPairId", &key.id);
    tag_set(x, &key.tags);
    Ok(())
}

pub fn import_key_pair(c: &mut Call<'_>) -> Result<(), ApiError> {
    let name = c.p.required("KeyName")?;
    let material = c.p.required("PublicKeyMaterial")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(material.trim().as_bytes())
        .map_err(|_| Error::InvalidParameterValue("PublicKeyMaterial must be base64 encoded".into()))?;
    let tag_specs = c.p.tag_specs()?;
    c.ready()?;
    let key = c.ec2.import_key_pair(&c.ctx, ImportKeyPair { name, public_key_material: decoded, tag_specs })?;
    let x = &mut c.xml;
    x.leaf("keyName", &key.name);
    x.leaf("keyFingerprint", &key.fingerprint);
    x.leaf("keyPairId", &key.id);
    tag_set(x, &key.tags);
    Ok(())
}

pub fn describe_key_pairs(c: &mut Call<'_>) -> Result<(), ApiError> {
    let req = DescribeKeyPairs { names: c.p.strings("KeyName")?, ids: c.p.ids("KeyPairId", key_id)?, filters: c.p.filters()? };
    let include_public = c.p.bool("IncludePublicKey")?.unwrap_or(false);
    c.ready()?;
    let keys = c.ec2.describe_key_pairs(&c.ctx, req)?;
    c.xml.list("keySet", keys, |x, k| {
        x.leaf("keyPairId", &k.id);
        x.leaf("keyName", &k.name);
        x.leaf("keyFingerprint", &k.fingerprint);
        x.leaf("keyType", k.key_type.as_str());
        tag_set(x, &k.tags);
        if include_public {
            x.leaf("publicKey", k.public_key_line());
        }
        x.leaf("createTime", k.created.iso());
    });
    Ok(())
}

pub fn delete_key_pair(c: &mut Call<'_>) -> Result<(), ApiError> {
    let name = c.p.string("KeyName").filter(|s| !s.is_empty());
    let id = c.p.id("KeyPairId", key_id)?;
    let r = match (name, id) {
        (Some(_), Some(_)) => {
            return Err(Error::InvalidParameterCombination("Specify either KeyName or KeyPairId, not both".into()).into())
        }
        (Some(n), None) => KeyPairRef::Name(n),
        (None, Some(i)) => KeyPairRef::Id(i),
        (None, None) => return Err(Error::MissingParameter("KeyName or KeyPairId".into()).into()),
    };
    c.ready()?;
    let deleted = c.ec2.delete_key_pair(&c.ctx, r)?;
    return_true(&mut c.xml);
    c.xml.opt("keyPairId", deleted);
    Ok(())
}
