//! The metadata tree: what `GET /latest/...` returns for each path.

use std::collections::BTreeMap;

/// Everything the service tells an instance about itself, as the control
/// plane knows it at the moment of the request.
#[derive(Clone, Debug, Default)]
pub struct InstanceMetadata {
    pub instance_id: String,
    pub ami_id: String,
    pub ami_launch_index: u32,
    pub reservation_id: String,
    pub instance_type: String,
    pub account_id: String,
    pub region: String,
    pub availability_zone: String,
    pub availability_zone_id: String,
    pub local_hostname: String,
    pub local_ipv4: String,
    pub public_hostname: Option<String>,
    pub public_ipv4: Option<String>,
    pub mac: String,
    pub interface_id: String,
    pub subnet_id: String,
    pub subnet_cidr: String,
    pub vpc_id: String,
    pub vpc_cidr: String,
    /// `(id, name)` of the instance's security groups.
    pub security_groups: Vec<(String, String)>,
    /// `(key name, OpenSSH public key)`.
    pub key: Option<(String, String)>,
    pub user_data: Option<Vec<u8>>,
    pub tags: Vec<(String, String)>,
    pub tags_enabled: bool,
    pub root_device_name: String,
    pub launch_time: String,
    pub tokens_required: bool,
    pub endpoint_enabled: bool,
    pub hop_limit: u32,
}

fn leaves(m: &InstanceMetadata) -> BTreeMap<String, String> {
    let mut t = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        t.insert(k.to_string(), v);
    };
    put("ami-id", m.ami_id.clone());
    put("ami-launch-index", m.ami_launch_index.to_string());
    put("ami-manifest-path", "(unknown)".into());
    put("block-device-mapping/ami", m.root_device_name.clone());
    put("block-device-mapping/root", m.root_device_name.clone());
    put("hostname", m.local_hostname.clone());
    put("instance-action", "none".into());
    put("instance-id", m.instance_id.clone());
    put("instance-life-cycle", "on-demand".into());
    put("instance-type", m.instance_type.clone());
    put("local-hostname", m.local_hostname.clone());
    put("local-ipv4", m.local_ipv4.clone());
    put("mac", m.mac.clone());
    put("placement/availability-zone", m.availability_zone.clone());
    put("placement/availability-zone-id", m.availability_zone_id.clone());
    put("placement/region", m.region.clone());
    put("profile", "default-hvm".into());
    put("reservation-id", m.reservation_id.clone());
    put("security-groups", m.security_groups.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join("\n"));
    put("services/domain", "amazonaws.com".into());
    put("services/partition", "aws".into());
    if let Some(h) = &m.public_hostname {
        put("public-hostname", h.clone());
    }
    if let Some(ip) = &m.public_ipv4 {
        put("public-ipv4", ip.clone());
    }
    if let Some((_, key)) = &m.key {
        put("public-keys/0/openssh-key", key.clone());
    }
    let nic = format!("network/interfaces/macs/{}/", m.mac);
    let mut nput = |k: &str, v: String| {
        t.insert(format!("{nic}{k}"), v);
    };
    nput("device-number", "0".into());
    nput("interface-id", m.interface_id.clone());
    nput("local-hostname", m.local_hostname.clone());
    nput("local-ipv4s", m.local_ipv4.clone());
    nput("mac", m.mac.clone());
    nput("owner-id", m.account_id.clone());
    nput("security-group-ids", m.security_groups.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>().join("\n"));
    nput("security-groups", m.security_groups.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join("\n"));
    nput("subnet-id", m.subnet_id.clone());
    nput("subnet-ipv4-cidr-block", m.subnet_cidr.clone());
    nput("vpc-id", m.vpc_id.clone());
    nput("vpc-ipv4-cidr-block", m.vpc_cidr.clone());
    nput("vpc-ipv4-cidr-blocks", m.vpc_cidr.clone());
    if let Some(h) = &m.public_hostname {
        nput("public-hostname", h.clone());
    }
    if let Some(ip) = &m.public_ipv4 {
        nput("public-ipv4s", ip.clone());
    }
    if m.tags_enabled {
        for (k, v) in &m.tags {
            t.insert(format!("tags/instance/{k}"), v.clone());
        }
    }
    t
}

/// The entries directly under `dir` ("" for the top), directories with a
/// trailing slash, as the metadata service lists them.
fn listing(t: &BTreeMap<String, String>, dir: &str) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    for k in t.keys() {
        let Some(rest) = k.strip_prefix(dir) else { continue };
        let entry = match rest.split_once('/') {
            Some((d, _)) => format!("{d}/"),
            None => rest.to_string(),
        };
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    (!out.is_empty()).then(|| out.join("\n"))
}

pub fn identity_document(m: &InstanceMetadata) -> String {
    serde_json::json!({
        "accountId": m.account_id,
        "architecture": "x86_64",
        "availabilityZone": m.availability_zone,
        "billingProducts": null,
        "devpayProductCodes": null,
        "marketplaceProductCodes": null,
        "imageId": m.ami_id,
        "instanceId": m.instance_id,
        "instanceType": m.instance_type,
        "kernelId": null,
        "pendingTime": m.launch_time,
        "privateIp": m.local_ipv4,
        "ramdiskId": null,
        "region": m.region,
        "version": "2017-09-30",
    })
    .to_string()
}

/// The dated API versions EC2's metadata service answers under, besides
/// `latest`. Clients pin one (cloud-init asks for `2009-04-04` and, when
/// present, `2016-09-02` or newer); Strato serves the same tree under each.
const VERSIONS: &[&str] = &[
    "1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15", "2008-02-01", "2008-09-01",
    "2009-04-04", "2011-01-01", "2011-05-01", "2012-01-12", "2014-02-25", "2014-11-05", "2015-10-20",
    "2016-04-19", "2016-06-30", "2016-09-02", "2018-03-28", "2018-08-17", "2018-09-24", "2019-10-01",
    "2020-10-27", "2021-01-03", "2021-03-23", "2021-07-15", "2022-09-24", "2023-09-23",
];

/// The response body for a GET of `path`, or `None` for 404.
pub fn lookup(m: &InstanceMetadata, path: &str) -> Option<Vec<u8>> {
    let p = path.trim_start_matches('/');
    if p.is_empty() {
        let mut all = VERSIONS.to_vec();
        all.push("latest");
        return Some(all.join("\n").into_bytes());
    }
    // `/<version>/rest` is `/latest/rest`.
    let (version, rest) = p.split_once('/').unwrap_or((p, ""));
    if version != "latest" && VERSIONS.contains(&version) {
        return lookup(m, &format!("latest/{rest}"));
    }
    let s = |v: String| Some(v.into_bytes());
    match p {
        "latest" | "latest/" => {
            let mut top = vec!["dynamic", "meta-data"];
            if m.user_data.is_some() {
                top.push("user-data");
            }
            return s(top.join("\n"));
        }
        "latest/user-data" => return m.user_data.clone(),
        "latest/dynamic" | "latest/dynamic/" => return s("instance-identity/".into()),
        "latest/dynamic/instance-identity" | "latest/dynamic/instance-identity/" => return s("document".into()),
        "latest/dynamic/instance-identity/document" => return s(identity_document(m)),
        _ => {}
    }
    let rest = p.strip_prefix("latest/meta-data")?;
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    // The key list shows `0=<key name>`, as on EC2.
    if rest == "public-keys" || rest == "public-keys/" {
        return m.key.as_ref().map(|(name, _)| format!("0={name}").into_bytes());
    }
    let t = leaves(m);
    if let Some(v) = t.get(rest) {
        return s(v.clone());
    }
    let dir = if rest.is_empty() || rest.ends_with('/') { rest.to_string() } else { format!("{rest}/") };
    listing(&t, &dir).map(String::into_bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> InstanceMetadata {
        InstanceMetadata {
            instance_id: "i-0123456789abcdef0".into(),
            ami_id: "ami-0123456789abcdef0".into(),
            instance_type: "t2.micro".into(),
            account_id: "123456789012".into(),
            region: "ap-northeast-2".into(),
            availability_zone: "ap-northeast-2a".into(),
            availability_zone_id: "apne2-az1".into(),
            local_hostname: "ip-172-31-0-4.ap-northeast-2.compute.internal".into(),
            local_ipv4: "172.31.0.4".into(),
            public_ipv4: Some("198.18.0.5".into()),
            mac: "02:00:00:00:00:04".into(),
            security_groups: vec![("sg-1".into(), "default".into()), ("sg-2".into(), "web".into())],
            key: Some(("k".into(), "ssh-ed25519 AAAA k".into())),
            user_data: Some(b"#!/bin/sh\n".to_vec()),
            root_device_name: "/dev/xvda".into(),
            endpoint_enabled: true,
            hop_limit: 1,
            ..Default::default()
        }
    }

    fn get(p: &str) -> Option<String> {
        lookup(&sample(), p).map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    #[test]
    fn paths() {
        assert_eq!(get("/latest/meta-data/instance-id").as_deref(), Some("i-0123456789abcdef0"));
        assert_eq!(get("/latest/meta-data/placement/availability-zone").as_deref(), Some("ap-northeast-2a"));
        assert_eq!(get("/latest/meta-data/public-keys/").as_deref(), Some("0=k"));
        assert_eq!(get("/latest/meta-data/public-keys/0/").as_deref(), Some("openssh-key"));
        assert_eq!(get("/latest/meta-data/public-keys/0/openssh-key").as_deref(), Some("ssh-ed25519 AAAA k"));
        assert_eq!(get("/latest/meta-data/security-groups").as_deref(), Some("default\nweb"));
        assert_eq!(get("/latest/meta-data/network/interfaces/macs/").as_deref(), Some("02:00:00:00:00:04/"));
        assert_eq!(get("/latest/meta-data/network/interfaces/macs/02:00:00:00:00:04/local-ipv4s").as_deref(), Some("172.31.0.4"));
        assert_eq!(get("/latest/user-data").as_deref(), Some("#!/bin/sh\n"));
        assert_eq!(get("/2009-04-04/meta-data/instance-id").as_deref(), Some("i-0123456789abcdef0"));
        assert_eq!(get("/2016-09-02/meta-data/public-keys/0/openssh-key").as_deref(), Some("ssh-ed25519 AAAA k"));
        assert!(get("/").is_some_and(|l| l.lines().any(|x| x == "2009-04-04") && l.lines().last() == Some("latest")));
        assert!(get("/1999-01-01/meta-data/instance-id").is_none());
        assert!(get("/latest/meta-data/").is_some_and(|l| l.lines().any(|x| x == "placement/") && l.lines().any(|x| x == "instance-id")));
        assert!(get("/latest/meta-data/nope").is_none());
        let doc: serde_json::Value = serde_json::from_str(&get("/latest/dynamic/instance-identity/document").expect("doc")).expect("json");
        assert_eq!(doc["instanceId"], "i-0123456789abcdef0");
        assert_eq!(doc["region"], "ap-northeast-2");
    }
}
