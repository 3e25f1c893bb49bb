//! The persistence interface the domain needs, and nothing more.
//!
//! Resources are stored as documents: a kind, an id, the owning account and
//! region, and a serialized body. That small surface is all a backend has to
//! provide (SQLite today in `strato-store`, PostgreSQL later), and the domain
//! code never sees SQL. Each mutation of the domain happens in one write
//! transaction: every document it touches commits together or not at all.
//! A transaction that is dropped without `commit` rolls back.
//!
//! Besides documents there is a small key/value space (`meta`) for things that
//! are not resources: idempotency records, markers that a scope's default
//! network has been made, the global public address pool.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::ids::{AccountId, Region, ResourceKind};

/// One stored resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doc {
    pub kind: ResourceKind,
    pub id: String,
    pub account: String,
    pub region: String,
    pub body: String,
}

/// An access key as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account: AccountId,
}

/// Reads within one consistent snapshot.
pub trait ReadTx {
    fn get(&self, kind: ResourceKind, id: &str) -> Result<Option<Doc>>;
    /// Documents of a kind owned by `account` in `region`, oldest first.
    fn list(&self, kind: ResourceKind, account: &str, region: &str) -> Result<Vec<Doc>>;
    /// Documents of a kind in every account and region, oldest first.
    fn list_all(&self, kind: ResourceKind) -> Result<Vec<Doc>>;
    fn meta_get(&self, key: &str) -> Result<Option<String>>;
    /// Meta entries whose key starts with `prefix`, in key order.
    fn meta_scan(&self, prefix: &str) -> Result<Vec<(String, String)>>;
}

/// A write transaction. Dropping it without `commit` rolls everything back.
pub trait WriteTx: ReadTx {
    fn put(&mut self, doc: Doc) -> Result<()>;
    fn delete(&mut self, kind: ResourceKind, id: &str) -> Result<()>;
    fn meta_put(&mut self, key: &str, value: &str) -> Result<()>;
    fn meta_delete(&mut self, key: &str) -> Result<()>;
    fn commit(self: Box<Self>) -> Result<()>;
}

pub trait Store: Send + Sync {
    fn read(&self) -> Result<Box<dyn ReadTx + '_>>;
    fn write(&self) -> Result<Box<dyn WriteTx + '_>>;

    fn access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>>;
    fn put_access_key(&self, key: &AccessKey) -> Result<()>;
    fn delete_access_key(&self, access_key_id: &str) -> Result<bool>;
    fn access_keys(&self) -> Result<Vec<AccessKey>>;
}

/// A domain type that is stored as a document.
pub trait Resource: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    const KIND: ResourceKind;
    fn id_str(&self) -> &str;
    fn owner(&self) -> &AccountId;
    fn region(&self) -> &Region;
}

fn decode<R: Resource>(doc: &Doc) -> Result<R> {
    serde_json::from_str(&doc.body)
        .map_err(|e| Error::internal(format!("stored {} {} is unreadable: {e}", doc.kind.resource_type(), doc.id)))
}

/// Decoded documents, keyed by kind and id and checked against the stored body.
///
/// Listing a scope reads every document of a kind, and decoding them is most
/// of the cost of a `Describe*` over hundreds of resources. A decoded value is
/// reused only while the stored text is byte-for-byte the one it was decoded
/// from, so the store stays the only source of truth and the cache can never
/// serve a stale value, whoever wrote the store.
struct Decoded {
    body: String,
    value: Arc<dyn Any + Send + Sync>,
}

/// Beyond this many entries the cache starts over rather than grow without end.
const DECODE_CACHE_LIMIT: usize = 200_000;

fn decode_cache() -> &'static Mutex<HashMap<(ResourceKind, String), Decoded>> {
    static CACHE: OnceLock<Mutex<HashMap<(ResourceKind, String), Decoded>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn decode_all<R: Resource>(docs: Vec<Doc>) -> Result<Vec<Arc<R>>> {
    let Ok(mut cache) = decode_cache().lock() else {
        return docs.iter().map(|d| decode::<R>(d).map(Arc::new)).collect();
    };
    if cache.len() > DECODE_CACHE_LIMIT {
        cache.clear();
    }
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let key = (doc.kind, doc.id);
        if let Some(hit) = cache.get(&key) {
            if hit.body == doc.body {
                if let Ok(v) = hit.value.clone().downcast::<R>() {
                    out.push(v);
                    continue;
                }
            }
        }
        let value: Arc<R> = Arc::new(serde_json::from_str(&doc.body).map_err(|e| {
            Error::internal(format!("stored {} {} is unreadable: {e}", key.0.resource_type(), key.1))
        })?);
        out.push(value.clone());
        cache.insert(key, Decoded { body: doc.body, value });
    }
    Ok(out)
}

/// Typed access on top of the document interface, for any transaction.
pub trait TxExt: ReadTx {
    fn load<R: Resource>(&self, id: &str) -> Result<Option<R>> {
        match self.get(R::KIND, id)? {
            // Single loads mostly precede a change, so caching them would only
            // churn the decode cache.
            Some(doc) => decode(&doc).map(Some),
            None => Ok(None),
        }
    }

    /// Loads a resource the caller's account may see, or `None`.
    fn load_owned<R: Resource>(&self, id: &str, account: &AccountId, region: &Region) -> Result<Option<R>> {
        Ok(self.load::<R>(id)?.filter(|r| r.owner() == account && r.region() == region))
    }

    fn list_of<R: Resource>(&self, account: &AccountId, region: &Region) -> Result<Vec<R>> {
        Ok(self.list_shared::<R>(account, region)?.into_iter().map(|r| (*r).clone()).collect())
    }

    /// Like `list_of`, sharing decoded values instead of copying them.
    fn list_shared<R: Resource>(&self, account: &AccountId, region: &Region) -> Result<Vec<Arc<R>>> {
        decode_all(self.list(R::KIND, account.as_str(), region.as_str())?)
    }

    fn list_all_of<R: Resource>(&self) -> Result<Vec<R>> {
        Ok(decode_all::<R>(self.list_all(R::KIND)?)?.into_iter().map(|r| (*r).clone()).collect())
    }
}

impl<T: ReadTx + ?Sized> TxExt for T {}

/// Typed writes.
pub trait WriteTxExt: WriteTx {
    fn save<R: Resource>(&mut self, r: &R) -> Result<()> {
        let body = serde_json::to_string(r).map_err(Error::internal)?;
        self.put(Doc {
            kind: R::KIND,
            id: r.id_str().to_string(),
            account: r.owner().as_str().to_string(),
            region: r.region().as_str().to_string(),
            body,
        })
    }

    fn remove<R: Resource>(&mut self, r: &R) -> Result<()> {
        self.delete(R::KIND, r.id_str())
    }
}

impl<T: WriteTx + ?Sized> WriteTxExt for T {}
