//! Where access keys come from: the config file, the store (keys made with
//! `strato admin`), and, only while listening on loopback with nothing else
//! configured, the development key `test`/`test`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strato_api::Credentials;
use strato_core::ids::AccountId;
use strato_core::store::Store;

use crate::config::{AccountConfig, DEV_ACCESS_KEY, DEV_ACCOUNT, DEV_SECRET_KEY};

pub struct KeyRing {
    configured: HashMap<String, (String, AccountId)>,
    store: Arc<dyn Store>,
    dev: bool,
    /// Keys recently read from the store. Every request needs its key, and a
    /// store read per request costs more than the rest of a small request; a
    /// key deleted with `strato admin` stops working within `KEY_CACHE_TTL`.
    recent: Mutex<HashMap<String, (Instant, String, AccountId)>>,
}

const KEY_CACHE_TTL: Duration = Duration::from_secs(2);

impl KeyRing {
    pub fn new(accounts: &[AccountConfig], store: Arc<dyn Store>, dev: bool) -> Result<KeyRing, String> {
        let mut configured = HashMap::new();
        for a in accounts {
            let id = AccountId::parse(&a.id).map_err(|e| e.to_string())?;
            for k in &a.access_keys {
                configured.insert(k.access_key_id.clone(), (k.secret_access_key.clone(), id.clone()));
            }
        }
        Ok(KeyRing { configured, store, dev, recent: Mutex::new(HashMap::new()) })
    }

    /// Are there any credentials besides the development key?
    pub fn has_real_keys(&self) -> bool {
        !self.configured.is_empty() || self.store.access_keys().map(|k| !k.is_empty()).unwrap_or(false)
    }
}

impl Credentials for KeyRing {
    fn lookup(&self, access_key_id: &str) -> Option<(String, AccountId)> {
        if let Some(hit) = self.configured.get(access_key_id) {
            return Some(hit.clone());
        }
        if self.dev && access_key_id == DEV_ACCESS_KEY {
            return AccountId::parse(DEV_ACCOUNT).ok().map(|a| (DEV_SECRET_KEY.to_string(), a));
        }
        if let Ok(recent) = self.recent.lock() {
            if let Some((at, secret, account)) = recent.get(access_key_id) {
                if at.elapsed() < KEY_CACHE_TTL {
                    return Some((secret.clone(), account.clone()));
                }
            }
        }
        match self.store.access_key(access_key_id) {
            Ok(Some(k)) => {
                if let Ok(mut recent) = self.recent.lock() {
                    if recent.len() > 10_000 {
                        recent.clear();
                    }
                    recent.insert(access_key_id.to_string(), (Instant::now(), k.secret_access_key.clone(), k.account.clone()));
                }
                Some((k.secret_access_key, k.account))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "access key lookup failed");
                None
            }
        }
    }
}
