//! SQLite persistence for Strato, behind `strato_core::store::Store`.
//!
//! One writer connection serialises write transactions (`BEGIN IMMEDIATE`), and
//! a small pool of reader connections serves snapshots concurrently; WAL mode
//! lets readers proceed while a write is in progress. Schema changes are SQL
//! files in `migrations/`, applied in order and recorded in `user_version`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use strato_core::error::{Error, Result};
use strato_core::ids::{AccountId, ResourceKind};
use strato_core::store::{AccessKey, Doc, ReadTx, Store, WriteTx};

/// Migrations in order; the index + 1 is the schema version they bring.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_init.sql")];

/// Readers kept open for reuse; more are opened on demand when all are busy.
const READER_POOL: usize = 4;

fn db_err(e: rusqlite::Error) -> Error {
    Error::internal(format!("database: {e}"))
}

fn kind_name(k: ResourceKind) -> &'static str {
    k.resource_type()
}

#[cfg(test)]
fn kind_from(name: &str) -> Result<ResourceKind> {
    ResourceKind::from_resource_type(name).ok_or_else(|| Error::internal(format!("unknown kind {name} in store")))
}

pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db_err)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(db_err)?;
    // With WAL, NORMAL loses no committed transaction when the process dies
    // (only on power loss), and keeps commits cheap.
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(db_err)?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(db_err)?;
        restrict_permissions(path);
        configure(&conn)?;
        migrate(&conn)?;
        // Checkpoints copy the WAL back into the database and fsync it; done by
        // the committing writer they stall whichever request happens to be the
        // thousandth. A background thread does them instead.
        conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(db_err)?;
        spawn_checkpointer(path.to_path_buf());
        Ok(SqliteStore { path: path.to_path_buf(), writer: Mutex::new(conn), readers: Mutex::new(Vec::new()) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reader(&self) -> Result<Connection> {
        if let Some(c) = self.readers.lock().map_err(|_| Error::internal("reader pool poisoned"))?.pop() {
            return Ok(c);
        }
        let c = Connection::open(&self.path).map_err(db_err)?;
        configure(&c)?;
        Ok(c)
    }

    fn give_back(&self, c: Connection) {
        if let Ok(mut pool) = self.readers.lock() {
            if pool.len() < READER_POOL {
                pool.push(c);
            }
        }
    }

    fn writer(&self) -> Result<MutexGuard<'_, Connection>> {
        self.writer.lock().map_err(|_| Error::internal("writer poisoned"))
    }
}

/// Checkpoints the WAL every second from a connection of its own, without
/// blocking writers (PASSIVE). The thread ends when the database goes away.
fn spawn_checkpointer(path: PathBuf) {
    let spawned = std::thread::Builder::new().name("strato-checkpoint".into()).spawn(move || {
        let Ok(conn) = Connection::open(&path) else { return };
        if configure(&conn).is_err() {
            return;
        }
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            if !path.exists() {
                return;
            }
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the checkpoint thread; the WAL will grow until restart");
    }
}

/// The database holds secrets; only its owner may read it.
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(db_err)?;
    if version as usize > MIGRATIONS.len() {
        return Err(Error::internal(format!(
            "the database is at schema version {version}, newer than this strato knows ({}); upgrade strato",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let next = i as i64 + 1;
        let batch = format!("BEGIN IMMEDIATE; {sql}\n; PRAGMA user_version = {next}; COMMIT;");
        if let Err(e) = conn.execute_batch(&batch) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(Error::internal(format!("migration {next} failed: {e}")));
        }
        tracing::info!(version = next, "applied database migration");
    }
    Ok(())
}

fn get_doc(conn: &Connection, kind: ResourceKind, id: &str) -> Result<Option<Doc>> {
    let mut st = conn
        .prepare_cached("SELECT account, region, body FROM resources WHERE kind = ?1 AND id = ?2")
        .map_err(db_err)?;
    st.query_row(params![kind_name(kind), id], |r| {
        Ok(Doc { kind, id: id.to_string(), account: r.get(0)?, region: r.get(1)?, body: r.get(2)? })
    })
    .optional()
    .map_err(db_err)
}

fn list_docs(conn: &Connection, kind: ResourceKind, scope: Option<(&str, &str)>) -> Result<Vec<Doc>> {
    let map = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(String, String, String, String)> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    };
    let rows: Vec<(String, String, String, String)> = match scope {
        Some((account, region)) => {
            let mut st = conn
                .prepare_cached(
                    "SELECT id, account, region, body FROM resources WHERE kind = ?1 AND account = ?2 AND region = ?3 ORDER BY rowid",
                )
                .map_err(db_err)?;
            let it = st.query_map(params![kind_name(kind), account, region], map).map_err(db_err)?;
            it.collect::<rusqlite::Result<_>>().map_err(db_err)?
        }
        None => {
            let mut st = conn
                .prepare_cached("SELECT id, account, region, body FROM resources WHERE kind = ?1 ORDER BY rowid")
                .map_err(db_err)?;
            let it = st.query_map(params![kind_name(kind)], map).map_err(db_err)?;
            it.collect::<rusqlite::Result<_>>().map_err(db_err)?
        }
    };
    Ok(rows.into_iter().map(|(id, account, region, body)| Doc { kind, id, account, region, body }).collect())
}

fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    let mut st = conn.prepare_cached("SELECT value FROM meta WHERE key = ?1").map_err(db_err)?;
    st.query_row(params![key], |r| r.get(0)).optional().map_err(db_err)
}

fn meta_scan(conn: &Connection, prefix: &str) -> Result<Vec<(String, String)>> {
    // Keys are compared as text: everything from `prefix` up to the prefix with
    // its last byte's successor is exactly the set with that prefix.
    let mut st = conn
        .prepare_cached("SELECT key, value FROM meta WHERE key >= ?1 AND key < ?2 ORDER BY key")
        .map_err(db_err)?;
    let upper = format!("{prefix}\u{10FFFF}");
    let it = st.query_map(params![prefix, upper], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db_err)?;
    it.collect::<rusqlite::Result<_>>().map_err(db_err)
}

struct SqliteRead<'a> {
    store: &'a SqliteStore,
    conn: Option<Connection>,
}

impl SqliteRead<'_> {
    fn conn(&self) -> Result<&Connection> {
        self.conn.as_ref().ok_or_else(|| Error::internal("read transaction closed"))
    }
}

impl Drop for SqliteRead<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            if c.execute_batch("COMMIT").is_ok() {
                self.store.give_back(c);
            }
        }
    }
}

impl ReadTx for SqliteRead<'_> {
    fn get(&self, kind: ResourceKind, id: &str) -> Result<Option<Doc>> {
        get_doc(self.conn()?, kind, id)
    }
    fn list(&self, kind: ResourceKind, account: &str, region: &str) -> Result<Vec<Doc>> {
        list_docs(self.conn()?, kind, Some((account, region)))
    }
    fn list_all(&self, kind: ResourceKind) -> Result<Vec<Doc>> {
        list_docs(self.conn()?, kind, None)
    }
    fn meta_get(&self, key: &str) -> Result<Option<String>> {
        meta_get(self.conn()?, key)
    }
    fn meta_scan(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        meta_scan(self.conn()?, prefix)
    }
}

struct SqliteWrite<'a> {
    conn: MutexGuard<'a, Connection>,
    done: bool,
}

impl Drop for SqliteWrite<'_> {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "rollback failed");
            }
        }
    }
}

impl ReadTx for SqliteWrite<'_> {
    fn get(&self, kind: ResourceKind, id: &str) -> Result<Option<Doc>> {
        get_doc(&self.conn, kind, id)
    }
    fn list(&self, kind: ResourceKind, account: &str, region: &str) -> Result<Vec<Doc>> {
        list_docs(&self.conn, kind, Some((account, region)))
    }
    fn list_all(&self, kind: ResourceKind) -> Result<Vec<Doc>> {
        list_docs(&self.conn, kind, None)
    }
    fn meta_get(&self, key: &str) -> Result<Option<String>> {
        meta_get(&self.conn, key)
    }
    fn meta_scan(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        meta_scan(&self.conn, prefix)
    }
}

impl WriteTx for SqliteWrite<'_> {
    fn put(&mut self, doc: Doc) -> Result<()> {
        let mut st = self
            .conn
            .prepare_cached(
                "INSERT INTO resources (kind, id, account, region, body) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (kind, id) DO UPDATE SET account = excluded.account, region = excluded.region, body = excluded.body",
            )
            .map_err(db_err)?;
        st.execute(params![kind_name(doc.kind), doc.id, doc.account, doc.region, doc.body]).map_err(db_err)?;
        Ok(())
    }

    fn delete(&mut self, kind: ResourceKind, id: &str) -> Result<()> {
        let mut st = self.conn.prepare_cached("DELETE FROM resources WHERE kind = ?1 AND id = ?2").map_err(db_err)?;
        st.execute(params![kind_name(kind), id]).map_err(db_err)?;
        Ok(())
    }

    fn meta_put(&mut self, key: &str, value: &str) -> Result<()> {
        let mut st = self
            .conn
            .prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .map_err(db_err)?;
        st.execute(params![key, value]).map_err(db_err)?;
        Ok(())
    }

    fn meta_delete(&mut self, key: &str) -> Result<()> {
        let mut st = self.conn.prepare_cached("DELETE FROM meta WHERE key = ?1").map_err(db_err)?;
        st.execute(params![key]).map_err(db_err)?;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        self.conn.execute_batch("COMMIT").map_err(db_err)?;
        self.done = true;
        Ok(())
    }
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Store for SqliteStore {
    fn read(&self) -> Result<Box<dyn ReadTx + '_>> {
        let conn = self.reader()?;
        conn.execute_batch("BEGIN").map_err(db_err)?;
        Ok(Box::new(SqliteRead { store: self, conn: Some(conn) }))
    }

    fn write(&self) -> Result<Box<dyn WriteTx + '_>> {
        let conn = self.writer()?;
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
        Ok(Box::new(SqliteWrite { conn, done: false }))
    }

    fn access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>> {
        let conn = self.reader()?;
        let row: Option<(String, String)> = {
            let mut st = conn
                .prepare_cached("SELECT secret_access_key, account_id FROM access_keys WHERE access_key_id = ?1")
                .map_err(db_err)?;
            st.query_row(params![access_key_id], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(db_err)?
        };
        self.give_back(conn);
        match row {
            Some((secret, account)) => Ok(Some(AccessKey {
                access_key_id: access_key_id.to_string(),
                secret_access_key: secret,
                account: AccountId::parse(&account)?,
            })),
            None => Ok(None),
        }
    }

    fn put_access_key(&self, key: &AccessKey) -> Result<()> {
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO access_keys (access_key_id, secret_access_key, account_id, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (access_key_id) DO UPDATE SET secret_access_key = excluded.secret_access_key, account_id = excluded.account_id",
            params![key.access_key_id, key.secret_access_key, key.account.as_str(), now_secs()],
        )
        .map_err(db_err)?;
        Ok(())
    }

    fn delete_access_key(&self, access_key_id: &str) -> Result<bool> {
        let conn = self.writer()?;
        let n = conn.execute("DELETE FROM access_keys WHERE access_key_id = ?1", params![access_key_id]).map_err(db_err)?;
        Ok(n > 0)
    }

    fn access_keys(&self) -> Result<Vec<AccessKey>> {
        let conn = self.writer()?;
        let mut st = conn
            .prepare("SELECT access_key_id, secret_access_key, account_id FROM access_keys ORDER BY account_id, access_key_id")
            .map_err(db_err)?;
        let rows: Vec<(String, String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db_err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db_err)?;
        rows.into_iter()
            .map(|(id, secret, account)| Ok(AccessKey { access_key_id: id, secret_access_key: secret, account: AccountId::parse(&account)? }))
            .collect()
    }
}

/// Checks that kinds round-trip through their stored names.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for k in ResourceKind::ALL {
            assert_eq!(kind_from(kind_name(k)).ok(), Some(k));
        }
    }
}
