//! The storage conformance suite. Every backend of `Store` must pass it; today
//! that is SQLite. A PostgreSQL backend would call `conformance` the same way.

use std::path::PathBuf;
use std::sync::Arc;

use strato_core::ids::{AccountId, ResourceKind};
use strato_core::store::{AccessKey, Doc, Store};
use strato_store::SqliteStore;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("strato-store-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn doc(kind: ResourceKind, id: &str, account: &str, region: &str, body: &str) -> Doc {
    Doc { kind, id: id.into(), account: account.into(), region: region.into(), body: body.into() }
}

/// What every backend must do.
fn conformance(store: &dyn Store) {
    // Committed writes are visible; listings are per scope and in creation order.
    let mut tx = store.write().expect("write");
    tx.put(doc(ResourceKind::Vpc, "vpc-2", "111111111111", "us-east-1", "{\"n\":2}")).expect("put");
    tx.put(doc(ResourceKind::Vpc, "vpc-1", "111111111111", "us-east-1", "{\"n\":1}")).expect("put");
    tx.put(doc(ResourceKind::Vpc, "vpc-3", "222222222222", "us-east-1", "{}")).expect("put");
    tx.put(doc(ResourceKind::Vpc, "vpc-4", "111111111111", "eu-west-1", "{}")).expect("put");
    tx.meta_put("a/1", "x").expect("meta");
    tx.meta_put("a/2", "y").expect("meta");
    tx.meta_put("b/1", "z").expect("meta");
    tx.commit().expect("commit");

    let r = store.read().expect("read");
    let ids: Vec<String> = r.list(ResourceKind::Vpc, "111111111111", "us-east-1").expect("list").into_iter().map(|d| d.id).collect();
    assert_eq!(ids, vec!["vpc-2", "vpc-1"], "scope and creation order");
    assert_eq!(r.list_all(ResourceKind::Vpc).expect("all").len(), 4);
    assert!(r.list(ResourceKind::Subnet, "111111111111", "us-east-1").expect("list").is_empty());
    assert_eq!(r.get(ResourceKind::Vpc, "vpc-1").expect("get").map(|d| d.body), Some("{\"n\":1}".to_string()));
    assert_eq!(r.get(ResourceKind::Subnet, "vpc-1").expect("get"), None, "kind is part of the key");
    let scanned: Vec<String> = r.meta_scan("a/").expect("scan").into_iter().map(|(k, _)| k).collect();
    assert_eq!(scanned, vec!["a/1", "a/2"]);
    drop(r);

    // An update keeps the creation order.
    let mut tx = store.write().expect("write");
    tx.put(doc(ResourceKind::Vpc, "vpc-2", "111111111111", "us-east-1", "{\"n\":22}")).expect("put");
    tx.commit().expect("commit");
    let r = store.read().expect("read");
    let docs = r.list(ResourceKind::Vpc, "111111111111", "us-east-1").expect("list");
    assert_eq!(docs[0].id, "vpc-2");
    assert_eq!(docs[0].body, "{\"n\":22}");
    drop(r);

    // A transaction dropped without commit leaves no trace.
    {
        let mut tx = store.write().expect("write");
        tx.put(doc(ResourceKind::Vpc, "vpc-9", "111111111111", "us-east-1", "{}")).expect("put");
        tx.delete(ResourceKind::Vpc, "vpc-1").expect("delete");
        tx.meta_put("a/3", "q").expect("meta");
    }
    let r = store.read().expect("read");
    assert!(r.get(ResourceKind::Vpc, "vpc-9").expect("get").is_none());
    assert!(r.get(ResourceKind::Vpc, "vpc-1").expect("get").is_some());
    assert!(r.meta_get("a/3").expect("meta").is_none());
    drop(r);

    // A reader keeps its snapshot while a writer commits.
    let r = store.read().expect("read");
    assert!(r.get(ResourceKind::Vpc, "vpc-1").expect("get").is_some());
    let mut tx = store.write().expect("write");
    tx.delete(ResourceKind::Vpc, "vpc-1").expect("delete");
    tx.meta_delete("a/1").expect("meta delete");
    tx.commit().expect("commit");
    assert!(r.get(ResourceKind::Vpc, "vpc-1").expect("get").is_some(), "snapshot isolation");
    drop(r);
    let r = store.read().expect("read");
    assert!(r.get(ResourceKind::Vpc, "vpc-1").expect("get").is_none());
    assert!(r.meta_get("a/1").expect("meta").is_none());
    drop(r);

    // Access keys.
    let key = AccessKey { access_key_id: "AKIATEST".into(), secret_access_key: "s3cret".into(), account: AccountId::parse("111111111111").expect("acct") };
    store.put_access_key(&key).expect("put key");
    assert_eq!(store.access_key("AKIATEST").expect("get key"), Some(key.clone()));
    assert_eq!(store.access_keys().expect("keys"), vec![key]);
    assert!(store.delete_access_key("AKIATEST").expect("delete"));
    assert!(!store.delete_access_key("AKIATEST").expect("delete again"));
    assert_eq!(store.access_key("AKIATEST").expect("get key"), None);
}

#[test]
fn sqlite_passes_the_conformance_suite() {
    let dir = TempDir::new("conformance");
    let store = SqliteStore::open(&dir.0.join("strato.db")).expect("open");
    conformance(&store);
}

#[test]
fn sqlite_state_survives_reopening() {
    let dir = TempDir::new("reopen");
    let path = dir.0.join("strato.db");
    {
        let store = SqliteStore::open(&path).expect("open");
        let mut tx = store.write().expect("write");
        tx.put(doc(ResourceKind::Instance, "i-1", "111111111111", "us-east-1", "{}")).expect("put");
        tx.commit().expect("commit");
    }
    let store = SqliteStore::open(&path).expect("reopen");
    assert!(store.read().expect("read").get(ResourceKind::Instance, "i-1").expect("get").is_some());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the database holds secrets");
    }
}

#[test]
fn sqlite_serialises_concurrent_writers() {
    let dir = TempDir::new("concurrent");
    let store = Arc::new(SqliteStore::open(&dir.0.join("strato.db")).expect("open"));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let s = store.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    // Read-modify-write of one counter: lost updates would show.
                    let mut tx = s.write().expect("write");
                    let n: u64 = tx.meta_get("counter").expect("get").map(|v| v.parse().expect("num")).unwrap_or(0);
                    tx.meta_put("counter", &(n + 1).to_string()).expect("put");
                    tx.put(doc(ResourceKind::Instance, &format!("i-{t}-{i}"), "111111111111", "us-east-1", "{}")).expect("put");
                    tx.commit().expect("commit");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let r = store.read().expect("read");
    assert_eq!(r.meta_get("counter").expect("get").as_deref(), Some("200"));
    assert_eq!(r.list_all(ResourceKind::Instance).expect("all").len(), 200);
}
