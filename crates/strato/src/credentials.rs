//! Where access keys come from: the config file, the store (keys made with
//! `strato admin`), and, only while listening on loopback with nothing else
//! configured, the development key `test`/`test`.

use std::collections::HashMap;
use std::sync::Arc;

use strato_api::Credentials;
use strato_core::ids::AccountId;
use strato_core::store::Store;

use crate::config::{AccountConfig, DEV_ACCESS_KEY, DEV_ACCOUNT, DEV_SECRET_KEY};

pub struct KeyRing {
    configured: HashMap<String, (String, AccountId)>,
    store: Arc<dyn Store>,
    dev: bool,
}

impl KeyRing {
    pub fn new(accounts: &[AccountConfig], store: Arc<dyn Store>, dev: bool) -> Result<KeyRing, String> {
        let mut configured = HashMap::new();
        for a in accounts {
            let id = AccountId::parse(&a.id).map_err(|e| e.to_string())?;
            for k in &a.access_keys {
                configured.insert(k.access_key_id.clone(), (k.secret_access_key.clone(), id.clone()));
            }
        }
        Ok(KeyRing { configured, store, dev })
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
        match self.store.access_key(access_key_id) {
            Ok(Some(k)) => return Some((k.secret_access_key, k.account)),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "access key lookup failed"),
        }
        if self.dev && access_key_id == DEV_ACCESS_KEY {
            return AccountId::parse(DEV_ACCOUNT).ok().map(|a| (DEV_SECRET_KEY.to_string(), a));
        }
        None
    }
}
