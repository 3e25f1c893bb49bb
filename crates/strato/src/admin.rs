//! `strato admin`: accounts and access keys, written to the store so that a
//! running `strato serve` on the same data directory accepts them at once.

use std::path::Path;

use rand::RngCore;
use strato_core::ids::AccountId;
use strato_core::store::{AccessKey, Store};
use strato_store::SqliteStore;

fn random_chars(n: usize, alphabet: &[u8]) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| alphabet[*b as usize % alphabet.len()] as char).collect()
}

/// A new key pair in AWS's shapes: `AKIA` + 16 upper-case characters, and a
/// 40-character secret.
pub fn new_key(account: &AccountId) -> AccessKey {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    AccessKey {
        access_key_id: format!("AKIA{}", random_chars(16, UPPER)),
        secret_access_key: random_chars(40, SECRET),
        account: account.clone(),
    }
}

fn open(data_dir: &Path) -> Result<SqliteStore, String> {
    SqliteStore::open(&data_dir.join("strato.db")).map_err(|e| e.to_string())
}

pub fn create_account(data_dir: &Path, account: Option<String>) -> Result<(), String> {
    let id = match account {
        Some(a) => AccountId::parse(&a).map_err(|e| e.to_string())?,
        None => AccountId::parse(&random_chars(12, b"0123456789")).map_err(|e| e.to_string())?,
    };
    let store = open(data_dir)?;
    if store.access_keys().map_err(|e| e.to_string())?.iter().any(|k| k.account == id) {
        return Err(format!("account {id} already exists; use `strato admin create-access-key --account-id {id}` for another key"));
    }
    let key = new_key(&id);
    store.put_access_key(&key).map_err(|e| e.to_string())?;
    print_key(&key);
    Ok(())
}

pub fn create_access_key(data_dir: &Path, account: &str) -> Result<(), String> {
    let id = AccountId::parse(account).map_err(|e| e.to_string())?;
    let store = open(data_dir)?;
    let key = new_key(&id);
    store.put_access_key(&key).map_err(|e| e.to_string())?;
    print_key(&key);
    Ok(())
}

pub fn list_access_keys(data_dir: &Path) -> Result<(), String> {
    let store = open(data_dir)?;
    for k in store.access_keys().map_err(|e| e.to_string())? {
        println!("{}\t{}", k.account, k.access_key_id);
    }
    Ok(())
}

pub fn delete_access_key(data_dir: &Path, key: &str) -> Result<(), String> {
    let store = open(data_dir)?;
    if store.delete_access_key(key).map_err(|e| e.to_string())? {
        println!("deleted {key}");
        Ok(())
    } else {
        Err(format!("no access key {key}"))
    }
}

fn print_key(k: &AccessKey) {
    println!("{{\"AccountId\": \"{}\", \"AccessKeyId\": \"{}\", \"SecretAccessKey\": \"{}\"}}", k.account, k.access_key_id, k.secret_access_key);
}
