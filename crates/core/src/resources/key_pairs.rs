//! SSH key pairs: created here (the private key is returned once and never
//! kept) or imported from a public key the user has.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::error::{Duplicate, Error, Limit, Result};
use crate::filter::{self, Filter, Filterable};
use crate::ids::{AccountId, KeyPairId, Region, ResourceKind};
use crate::service::{Ctx, Ec2};
use crate::ssh_keys::{self, KeyType};
use crate::store::{ReadTx, Resource, TxExt, WriteTxExt};
use crate::tags::{self, TagSpecification, Tags};
use crate::time::Timestamp;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyPair {
    pub id: KeyPairId,
    pub owner: AccountId,
    pub region: Region,
    pub name: String,
    pub key_type: KeyType,
    pub fingerprint: String,
    /// OpenSSH form without a comment (`ssh-ed25519 AAAA…`).
    pub public_key: String,
    pub created: Timestamp,
    pub tags: Tags,
}

impl Resource for KeyPair {
    const KIND: ResourceKind = ResourceKind::KeyPair;
    fn id_str(&self) -> &str {
        self.id.as_str()
    }
    fn owner(&self) -> &AccountId {
        &self.owner
    }
    fn region(&self) -> &Region {
        &self.region
    }
}

impl KeyPair {
    /// The public key as `DescribeKeyPairs` shows it, with the key name as comment.
    pub fn public_key_line(&self) -> String {
        format!("{} {}", self.public_key, self.name)
    }
}

impl Filterable for KeyPair {
    const FILTERS: &'static [&'static str] = &["key-pair-id", "fingerprint", "key-name", "key-type"];
    fn filter_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        match name {
            "key-pair-id" => vec![Cow::Borrowed(self.id.as_str())],
            "fingerprint" => vec![Cow::Borrowed(self.fingerprint.as_str())],
            "key-name" => vec![Cow::Borrowed(self.name.as_str())],
            "key-type" => vec![Cow::Borrowed(self.key_type.as_str())],
            _ => vec![],
        }
    }
    fn tags(&self) -> Option<&Tags> {
        Some(&self.tags)
    }
}

#[derive(Clone, Debug)]
pub struct CreateKeyPair {
    pub name: String,
    pub key_type: KeyType,
    pub tag_specs: Vec<TagSpecification>,
}

#[derive(Clone, Debug)]
pub struct ImportKeyPair {
    pub name: String,
    pub public_key_material: Vec<u8>,
    pub tag_specs: Vec<TagSpecification>,
}

#[derive(Clone, Debug, Default)]
pub struct DescribeKeyPairs {
    pub names: Vec<String>,
    pub ids: Vec<KeyPairId>,
    pub filters: Vec<Filter>,
}

#[derive(Clone, Debug)]
pub enum KeyPairRef {
    Name(String),
    Id(KeyPairId),
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::MissingParameter("KeyName".into()));
    }
    if name.len() > 255 || !name.is_ascii() {
        return Err(Error::invalid_value("keyName", name, "Key names are up to 255 ASCII characters."));
    }
    Ok(())
}

impl Ec2 {
    pub(crate) fn key_by_name(&self, tx: &dyn ReadTx, ctx: &Ctx, name: &str) -> Result<Option<KeyPair>> {
        Ok(tx.list_of::<KeyPair>(&ctx.account, &ctx.region)?.into_iter().find(|k| k.name == name))
    }

    fn store_key(&self, ctx: &Ctx, mut key: KeyPair, tag_specs: &[TagSpecification]) -> Result<KeyPair> {
        let tag_list = tags::for_kind(tag_specs, ResourceKind::KeyPair, &[ResourceKind::KeyPair])?;
        key.tags = tags::from_list(&tag_list, key.id.as_str())?;
        let mut tx = self.begin(ctx)?;
        let existing = tx.list_of::<KeyPair>(&ctx.account, &ctx.region)?;
        if existing.iter().any(|k| k.name == key.name) {
            return Err(Error::Duplicate {
                what: Duplicate::KeyPair,
                message: format!("The keypair '{}' already exists.", key.name),
            });
        }
        if existing.len() >= self.config.limits.key_pairs_per_region {
            return Err(Error::LimitExceeded { limit: Limit::KeyPairs, message: "Maximum number of key pairs has been reached.".into() });
        }
        tx.save(&key)?;
        tx.commit()?;
        Ok(key)
    }

    /// Returns the stored key pair and its private key (PEM), which is not kept.
    pub fn create_key_pair(&self, ctx: &Ctx, req: CreateKeyPair) -> Result<(KeyPair, String)> {
        check_name(&req.name)?;
        // Fail fast on a duplicate before spending time on key generation; the
        // check is repeated inside the write transaction.
        if self.key_by_name(self.store.read()?.as_ref(), ctx, &req.name)?.is_some() {
            return Err(Error::Duplicate { what: Duplicate::KeyPair, message: format!("The keypair '{}' already exists.", req.name) });
        }
        let generated = ssh_keys::generate(req.key_type).map_err(Error::internal)?;
        let key = KeyPair {
            id: KeyPairId::generate(),
            owner: ctx.account.clone(),
            region: ctx.region.clone(),
            name: req.name,
            key_type: req.key_type,
            fingerprint: generated.fingerprint,
            public_key: generated.public_openssh,
            created: self.now(),
            tags: Tags::default(),
        };
        let key = self.store_key(ctx, key, &req.tag_specs)?;
        Ok((key, generated.private_pem))
    }

    pub fn import_key_pair(&self, ctx: &Ctx, req: ImportKeyPair) -> Result<KeyPair> {
        check_name(&req.name)?;
        if req.public_key_material.is_empty() {
            return Err(Error::MissingParameter("PublicKeyMaterial".into()));
        }
        let imported = ssh_keys::import(&req.public_key_material).map_err(Error::InvalidKeyFormat)?;
        let key = KeyPair {
            id: KeyPairId::generate(),
            owner: ctx.account.clone(),
            region: ctx.region.clone(),
            name: req.name,
            key_type: imported.key_type,
            fingerprint: imported.fingerprint,
            public_key: imported.public_openssh,
            created: self.now(),
            tags: Tags::default(),
        };
        self.store_key(ctx, key, &req.tag_specs)
    }

    pub fn describe_key_pairs(&self, ctx: &Ctx, req: DescribeKeyPairs) -> Result<Vec<KeyPair>> {
        filter::check::<KeyPair>(&req.filters)?;
        let tx = self.store.read()?;
        let all = tx.list_of::<KeyPair>(&ctx.account, &ctx.region)?;
        if let Some(missing) = req.names.iter().find(|n| !all.iter().any(|k| &k.name == *n)) {
            return Err(Error::KeyNameNotFound(missing.clone()));
        }
        let missing: Vec<String> = req.ids.iter().filter(|id| !all.iter().any(|k| &k.id == *id)).map(|i| i.to_string()).collect();
        if !missing.is_empty() {
            return Err(Error::NotFound { kind: ResourceKind::KeyPair, ids: missing });
        }
        Ok(all
            .into_iter()
            .filter(|k| req.names.is_empty() || req.names.contains(&k.name))
            .filter(|k| req.ids.is_empty() || req.ids.contains(&k.id))
            .filter(|k| filter::matches(k, &req.filters))
            .collect())
    }

    /// Deleting a key name that doesn't exist succeeds, as on AWS.
    pub fn delete_key_pair(&self, ctx: &Ctx, r: KeyPairRef) -> Result<Option<KeyPairId>> {
        let mut tx = self.store.write()?;
        let key = match &r {
            KeyPairRef::Name(n) => self.key_by_name(tx.as_ref(), ctx, n)?,
            KeyPairRef::Id(id) => Some(
                tx.load_owned::<KeyPair>(id.as_str(), &ctx.account, &ctx.region)?
                    .ok_or_else(|| Error::not_found(ResourceKind::KeyPair, id.as_str()))?,
            ),
        };
        let Some(key) = key else { return Ok(None) };
        tx.remove(&key)?;
        tx.commit()?;
        Ok(Some(key.id))
    }
}
