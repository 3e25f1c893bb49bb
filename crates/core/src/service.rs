//! The EC2 service: one struct that carries out every action.
//!
//! Each action lives in the file of the resource it concerns (`resources/…`)
//! as a method on [`Ec2`]. An action takes a [`Ctx`] (who is asking, in which
//! region) and a typed request made by the wire layer, does all its reads and
//! writes in one store transaction, and only after the commit asks the runtime
//! to act. Nothing here knows about HTTP, XML or SQL.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use crate::cidr::Ipv4Cidr;
use crate::error::{Error, Result};
use crate::ids::{AccountId, Region};
use crate::runtime::Runtime;
use crate::store::{Store, WriteTx};
use crate::time::{Clock, Timestamp};

/// Who is asking, and where.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub account: AccountId,
    pub region: Region,
    /// The endpoint host the client used (for `regionEndpoint`).
    pub host: String,
}

/// AWS's default service quotas, all adjustable in the config.
#[derive(Clone, Debug)]
pub struct Limits {
    pub vpcs_per_region: usize,
    pub subnets_per_vpc: usize,
    pub security_groups_per_vpc: usize,
    pub rules_per_security_group: usize,
    pub security_groups_per_interface: usize,
    pub addresses_per_region: usize,
    pub key_pairs_per_region: usize,
    /// Running on-demand vCPUs per region (AWS's "standard instances" quota).
    pub vcpus_per_region: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            vpcs_per_region: 5,
            subnets_per_vpc: 200,
            security_groups_per_vpc: 2500,
            rules_per_security_group: 60,
            security_groups_per_interface: 5,
            addresses_per_region: 5,
            key_pairs_per_region: 5000,
            vcpus_per_region: 1152,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub regions: Vec<String>,
    /// Public IPv4 addresses handed out as Elastic IPs and auto-assigned
    /// public IPs. Default 198.18.0.0/15, a block reserved for benchmarking
    /// (RFC 2544) that is never routed on the internet.
    pub public_pool: Ipv4Cidr,
    pub limits: Limits,
    /// How long terminated instances stay visible (AWS: about an hour).
    pub terminated_retention_secs: i64,
    /// Owner of the built-in public images.
    pub platform_account: AccountId,
}

pub const PLATFORM_ACCOUNT: &str = "000000000000";
pub const PLATFORM_ALIAS: &str = "strato";

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            regions: crate::regions::DEFAULT_REGIONS.iter().map(|s| s.to_string()).collect(),
            public_pool: Ipv4Cidr::new(Ipv4Addr::new(198, 18, 0, 0), 15).unwrap_or_else(|_| unreachable!()),
            limits: Limits::default(),
            terminated_retention_secs: 3600,
            platform_account: AccountId::parse(PLATFORM_ACCOUNT).unwrap_or_else(|_| unreachable!()),
        }
    }
}

pub struct Ec2 {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) config: ServiceConfig,
    pub(crate) clock: Arc<dyn Clock>,
    /// Scopes (account, region) whose default network is known to exist, so
    /// the check costs one hash lookup after the first request.
    ready_scopes: Mutex<HashSet<(String, String)>>,
    /// Where the last search for a free address ended, per pool (a subnet,
    /// or the public pool). Only a hint for the next search: the address
    /// index in the store decides what is free, so losing it on restart is fine.
    cursors: Mutex<HashMap<String, u64>>,
    /// Serialises network pushes (see network.rs).
    pub(crate) net_lock: Mutex<()>,
}

impl Ec2 {
    pub fn new(store: Arc<dyn Store>, runtime: Arc<dyn Runtime>, config: ServiceConfig, clock: Arc<dyn Clock>) -> Self {
        Ec2 { store, runtime, config, clock, ready_scopes: Mutex::new(HashSet::new()), cursors: Mutex::new(HashMap::new()), net_lock: Mutex::new(()) }
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn serves_region(&self, region: &str) -> bool {
        self.config.regions.iter().any(|r| r == region)
    }

    /// Makes sure the caller's default network exists (made on first use,
    /// as AWS has it for every account and region).
    pub(crate) fn ensure_scope(&self, ctx: &Ctx) -> Result<()> {
        let key = (ctx.account.as_str().to_string(), ctx.region.as_str().to_string());
        if self.ready_scopes.lock().map_err(|_| Error::internal("scope cache poisoned"))?.contains(&key) {
            return Ok(());
        }
        let mut tx = self.store.write()?;
        self.ensure_scope_in(ctx, tx.as_mut())?;
        tx.commit()?;
        self.ready_scopes.lock().map_err(|_| Error::internal("scope cache poisoned"))?.insert(key);
        Ok(())
    }

    /// Opens a write transaction for a mutating action in the caller's scope.
    pub(crate) fn begin(&self, ctx: &Ctx) -> Result<Box<dyn WriteTx + '_>> {
        self.ensure_scope(ctx)?;
        self.store.write()
    }

    pub(crate) fn cursor(&self, pool: &str) -> u64 {
        self.cursors.lock().ok().and_then(|c| c.get(pool).copied()).unwrap_or(0)
    }

    pub(crate) fn set_cursor(&self, pool: &str, at: u64) {
        if let Ok(mut c) = self.cursors.lock() {
            c.insert(pool.to_string(), at);
        }
    }

    pub(crate) fn scope_marker(ctx: &Ctx) -> String {
        format!("scope/{}/{}", ctx.account, ctx.region)
    }
}
