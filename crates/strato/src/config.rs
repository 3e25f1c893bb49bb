//! Typed configuration: a TOML file, overridden by environment variables and
//! command-line flags. Defaults work on a laptop: listen on loopback, keep
//! state in the user's data directory, serve every AWS commercial region.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use strato_core::cidr::Ipv4Cidr;
use strato_core::ids::AccountId;
use strato_core::regions;
use strato_core::service::{Limits, ServiceConfig};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8773";

/// The account the development credentials (`test`/`test`) belong to.
pub const DEV_ACCOUNT: &str = "123456789012";
pub const DEV_ACCESS_KEY: &str = "test";
pub const DEV_SECRET_KEY: &str = "test";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Where built images live (default `<data_dir>/images`).
    pub images_dir: Option<PathBuf>,
    /// Region names to serve; the default is every AWS commercial region.
    pub regions: Option<Vec<String>>,
    /// Public IPv4 addresses for Elastic IPs and auto-assigned public IPs.
    pub public_pool: Option<String>,
    pub terminated_retention_secs: Option<i64>,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
}

/// How the namespace that stands for the internet meets the host. Both off
/// by default: then nothing an instance sends can leave the machine.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Route the public pool from the host into `strato-outside`, so that
    /// the host itself reaches instances' public addresses (SSH from the host).
    pub host_route: Option<bool>,
    /// Let traffic from instances with public addresses out to the real
    /// internet, NATed through the host's address.
    pub internet_egress: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub vpcs_per_region: Option<usize>,
    pub subnets_per_vpc: Option<usize>,
    pub security_groups_per_vpc: Option<usize>,
    pub rules_per_security_group: Option<usize>,
    pub security_groups_per_interface: Option<usize>,
    pub addresses_per_region: Option<usize>,
    pub key_pairs_per_region: Option<usize>,
    pub vcpus_per_region: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// `qemu` (the default) or `simulated` (a test double: no VMs at all).
    pub kind: Option<String>,
    /// `auto` (KVM when the host really has it, else TCG), `kvm` or `tcg`.
    pub accel: Option<String>,
    pub qemu_binary: Option<String>,
    /// The unprivileged user QEMU runs as (made if missing).
    pub qemu_user: Option<String>,
    /// How long a guest gets to power off before it is forced.
    pub stop_timeout_secs: Option<u64>,
    /// A guest that prints nothing on its console this long is reset.
    pub boot_watchdog_secs: Option<u64>,
    /// vCPUs and memory offered per host CPU and MiB.
    pub cpu_overcommit: Option<f64>,
    pub memory_overcommit: Option<f64>,
    /// Build the minimal image at start-up if it is missing (default true).
    pub build_default_image: Option<bool>,
    /// How long the simulated runtime takes to boot or stop an instance.
    pub simulated_delay_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub id: String,
    /// A label for the operator; Strato itself does not use it.
    #[allow(dead_code)]
    pub name: Option<String>,
    #[serde(default)]
    pub access_keys: Vec<KeyConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))
    }
}

/// The per-user data directory: `$XDG_DATA_HOME/strato`, else
/// `~/.local/share/strato`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("strato");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/share/strato");
    }
    PathBuf::from("strato-data")
}

pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| format!("'{s}' is not an ADDR:PORT to listen on (for example {DEFAULT_LISTEN})"))
}

/// Builds the service's settings from the file, checking every value.
pub fn service_config(f: &FileConfig) -> Result<ServiceConfig, String> {
    let mut c = ServiceConfig::default();
    if let Some(rs) = &f.regions {
        if rs.is_empty() {
            return Err("config: `regions` must name at least one region".into());
        }
        for r in rs {
            if !regions::well_formed(r) {
                return Err(format!("config: '{r}' is not a region name (expected something like ap-northeast-2)"));
            }
        }
        c.regions = rs.clone();
    }
    if let Some(p) = &f.public_pool {
        let pool: Ipv4Cidr = p.parse().map_err(|_| format!("config: public_pool '{p}' is not a CIDR block"))?;
        if pool.prefix() > 30 {
            return Err(format!("config: public_pool '{p}' is too small"));
        }
        c.public_pool = pool;
    }
    if let Some(s) = f.terminated_retention_secs {
        c.terminated_retention_secs = s.max(0);
    }
    let l = &f.limits;
    let d = Limits::default();
    c.limits = Limits {
        vpcs_per_region: l.vpcs_per_region.unwrap_or(d.vpcs_per_region),
        subnets_per_vpc: l.subnets_per_vpc.unwrap_or(d.subnets_per_vpc),
        security_groups_per_vpc: l.security_groups_per_vpc.unwrap_or(d.security_groups_per_vpc),
        rules_per_security_group: l.rules_per_security_group.unwrap_or(d.rules_per_security_group),
        security_groups_per_interface: l.security_groups_per_interface.unwrap_or(d.security_groups_per_interface),
        addresses_per_region: l.addresses_per_region.unwrap_or(d.addresses_per_region),
        key_pairs_per_region: l.key_pairs_per_region.unwrap_or(d.key_pairs_per_region),
        vcpus_per_region: l.vcpus_per_region.unwrap_or(d.vcpus_per_region),
    };
    for a in &f.accounts {
        AccountId::parse(&a.id).map_err(|e| format!("config: account {}: {e}", a.id))?;
        for k in &a.access_keys {
            if k.access_key_id.is_empty() || k.secret_access_key.is_empty() || k.access_key_id.contains('/') {
                return Err(format!("config: account {} has an empty or malformed access key", a.id));
            }
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_refused() {
        assert!(toml::from_str::<FileConfig>("lissen = \"x\"").is_err());
        let f: FileConfig = toml::from_str(
            "listen = \"127.0.0.1:9000\"\nregions = [\"ap-northeast-2\"]\n[[accounts]]\nid = \"111122223333\"\n[[accounts.access_keys]]\naccess_key_id = \"AKIA1\"\nsecret_access_key = \"s\"\n",
        )
        .expect("valid");
        let c = service_config(&f).expect("service config");
        assert_eq!(c.regions, vec!["ap-northeast-2"]);
    }

    #[test]
    fn bad_values_are_refused() {
        let f: FileConfig = toml::from_str("regions = [\"mars\"]").expect("parses");
        assert!(service_config(&f).is_err());
        let f: FileConfig = toml::from_str("public_pool = \"nope\"").expect("parses");
        assert!(service_config(&f).is_err());
        let f: FileConfig = toml::from_str("[[accounts]]\nid = \"12\"").expect("parses");
        assert!(service_config(&f).is_err());
    }
}
