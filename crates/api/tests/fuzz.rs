//! Property-based fuzzing of everything a client controls: the query parser,
//! the SigV4 verifier, and the whole request path through `Api::handle`.
//! Properties: nothing panics, nothing a client sends yields a 5xx, a correctly
//! signed request verifies and any change to its signed bytes does not.

use std::sync::Arc;

use proptest::prelude::*;
use strato_api::query::Params;
use strato_api::sigv4::{self, SignedRequest};
use strato_api::{Api, Credentials, HttpRequest};
use strato_core::ids::{AccountId, InstanceId, VolumeId};
use strato_core::lifecycle::Observation;
use strato_core::runtime::{InstanceSpec, Runtime, RuntimeError};
use strato_core::service::{Ec2, ServiceConfig};
use strato_core::time::{Clock, Timestamp};

const NOW: i64 = 1_800_000_000;

struct FixedClock;
impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_secs(NOW)
    }
}

/// A runtime that accepts everything and reports nothing.
struct Inert;
impl Runtime for Inert {
    fn name(&self) -> String {
        "inert".into()
    }
    fn start(&self, _: &InstanceSpec) -> Result<(), RuntimeError> {
        Ok(())
    }
    fn stop(&self, _: &InstanceId, _: bool) -> Result<(), RuntimeError> {
        Ok(())
    }
    fn reboot(&self, _: &InstanceId) -> Result<(), RuntimeError> {
        Ok(())
    }
    fn destroy(&self, _: &InstanceId, _: &[VolumeId]) -> Result<(), RuntimeError> {
        Ok(())
    }
    fn console_output(&self, _: &InstanceId) -> Result<Vec<u8>, RuntimeError> {
        Ok(vec![])
    }
    fn observe(&self, _: &InstanceId) -> Option<Observation> {
        None
    }
}

struct OneKey;
impl Credentials for OneKey {
    fn lookup(&self, k: &str) -> Option<(String, AccountId)> {
        if k != "AKIDFUZZ" {
            return None;
        }
        AccountId::parse("111111111111").ok().map(|a| ("fuzz-secret".to_string(), a))
    }
}

fn api() -> Api {
    let dir = std::env::temp_dir().join(format!("strato-fuzz-{}-{}", std::process::id(), rand_suffix()));
    let store = Arc::new(strato_store::SqliteStore::open(&dir.join("db")).expect("store"));
    let config = ServiceConfig { regions: vec!["us-east-1".into()], ..ServiceConfig::default() };
    let ec2 = Arc::new(Ec2::new(store, Arc::new(Inert), config, Arc::new(FixedClock)));
    ec2.ensure_builtin_images().expect("images");
    Api::new(ec2, Arc::new(OneKey), Arc::new(FixedClock))
}

fn as_signed(r: &HttpRequest) -> SignedRequest<'_> {
    SignedRequest { method: &r.method, path: &r.path, query: &r.query, headers: &r.headers, body: &r.body }
}

fn rand_suffix() -> String {
    strato_core::ids::random_hex(8)
}

/// Signs a form POST the way an SDK does.
fn signed(body: &str) -> HttpRequest {
    let amz_date = Timestamp::from_secs(NOW).amz_date();
    let mut headers = vec![
        ("host".to_string(), "localhost".to_string()),
        ("content-type".to_string(), "application/x-www-form-urlencoded".to_string()),
        ("x-amz-date".to_string(), amz_date.clone()),
    ];
    let req = SignedRequest { method: "POST", path: "/", query: "", headers: &headers, body: body.as_bytes() };
    let auth = sigv4::sign_headers(&req, "AKIDFUZZ", "fuzz-secret", "us-east-1", "ec2", &amz_date).expect("sign");
    headers.push(("authorization".to_string(), auth));
    HttpRequest { method: "POST".into(), path: "/".into(), query: String::new(), headers, body: body.as_bytes().to_vec() }
}

const ACTIONS: &[&str] = &[
    "RunInstances", "DescribeInstances", "CreateVpc", "CreateSubnet", "AuthorizeSecurityGroupIngress", "CreateTags",
    "DeleteTags", "DescribeImages", "ImportKeyPair", "ModifyInstanceAttribute", "AssociateAddress", "AllocateAddress",
    "DescribeSecurityGroupRules", "ModifySecurityGroupRules", "TerminateInstances", "StopInstances", "DescribeTags",
    "ModifySubnetAttribute", "DescribeInstanceTypes", "DeleteVpc", "RevokeSecurityGroupEgress", "DescribeAddresses",
];

const NAMES: &[&str] = &[
    "ImageId", "InstanceType", "MinCount", "MaxCount", "InstanceId.1", "InstanceId.2", "Filter.1.Name", "Filter.1.Value.1",
    "CidrBlock", "VpcId", "SubnetId", "GroupId", "IpPermissions.1.IpProtocol", "IpPermissions.1.FromPort",
    "IpPermissions.1.ToPort", "IpPermissions.1.IpRanges.1.CidrIp", "ResourceId.1", "Tag.1.Key", "Tag.1.Value",
    "KeyName", "PublicKeyMaterial", "UserData", "MaxResults", "NextToken", "DryRun", "BlockDeviceMapping.1.DeviceName",
    "BlockDeviceMapping.1.Ebs.VolumeSize", "TagSpecification.1.ResourceType", "TagSpecification.1.Tag.1.Key",
    "Attribute", "Value", "AllocationId", "SecurityGroupRule.1.SecurityGroupRuleId", "PrivateIpAddress",
    "MapPublicIpOnLaunch.Value", "ClientToken", "Placement.AvailabilityZone", "Filter.1.Value.9",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ami-12345678".to_string()),
        Just("t2.micro".to_string()),
        Just("1".to_string()),
        Just("-1".to_string()),
        Just("10.0.0.0/16".to_string()),
        Just("i-0123456789abcdef0".to_string()),
        Just("sg-0123456789abcdef0".to_string()),
        Just("true".to_string()),
        Just("99999999999999999999999".to_string()),
        "[ -~]{0,40}",
        "\\PC{0,20}",
    ]
}

fn encode(s: &str) -> String {
    sigv4::uri_encode(s.as_bytes(), false)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn query_parser_never_panics(s in "\\PC{0,200}", t in "[A-Za-z0-9.=&%+_-]{0,200}") {
        let _ = Params::parse(&[&s, &t]).map(|p| {
            let r = p.root();
            let _ = r.filters();
            let _ = r.tag_specs();
            let _ = r.strings("InstanceId");
            let _ = r.page();
            p.unknown()
        });
    }

    #[test]
    fn verifier_never_panics(
        method in "[A-Z]{0,7}",
        path in "\\PC{0,30}",
        query in "[ -~]{0,120}",
        auth in prop_oneof![Just(String::new()), "AWS4-HMAC-SHA256 [ -~]{0,150}", "[ -~]{0,80}"],
        date in prop_oneof![Just("20270115T080000Z".to_string()), "[0-9TZ]{0,18}"],
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut headers = vec![("host".to_string(), "h".to_string()), ("x-amz-date".to_string(), date)];
        if !auth.is_empty() {
            headers.push(("authorization".to_string(), auth));
        }
        let req = SignedRequest { method: &method, path: &path, query: &query, headers: &headers, body: &body };
        let lookup = |_: &str| Some("secret".to_string());
        let _ = sigv4::verify(&req, Timestamp::from_secs(NOW), &lookup, &sigv4::Options::default());
    }

    #[test]
    fn signed_requests_verify_and_tampered_ones_do_not(
        params in proptest::collection::vec(("[A-Za-z][A-Za-z0-9.]{0,12}", "\\PC{0,16}"), 0..6),
        at in 0usize..400,
    ) {
        let body = params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
        let req = signed(&body);
        let lookup = |k: &str| (k == "AKIDFUZZ").then(|| "fuzz-secret".to_string());
        let now = Timestamp::from_secs(NOW);
        prop_assert!(sigv4::verify(&as_signed(&req), now, &lookup, &sigv4::Options::default()).is_ok());
        // Change one byte of the body, or of a signed header value.
        let mut bad = req.clone();
        let total = bad.body.len() + bad.headers.iter().map(|(_, v)| v.len()).sum::<usize>();
        prop_assume!(total > 0);
        let mut i = at % total;
        if i < bad.body.len() {
            bad.body[i] ^= 0x01;
        } else {
            i -= bad.body.len();
            for h in bad.headers.iter_mut() {
                if i < h.1.len() {
                    let mut b = h.1.clone().into_bytes();
                    b[i] = if b[i] == b'a' { b'b' } else { b'a' };
                    h.1 = String::from_utf8_lossy(&b).into_owned();
                    break;
                }
                i -= h.1.len();
            }
        }
        if bad.body != req.body || bad.headers != req.headers {
            let unchanged_canonically = bad.headers.iter().zip(req.headers.iter()).all(|(a, b)| a.1.split_whitespace().eq(b.1.split_whitespace())) && bad.body == req.body;
            if !unchanged_canonically {
                prop_assert!(sigv4::verify(&as_signed(&bad), now, &lookup, &sigv4::Options::default()).is_err());
            }
        }
    }

    #[test]
    fn no_client_input_causes_a_server_error(
        action in proptest::sample::select(ACTIONS),
        params in proptest::collection::vec((proptest::sample::select(NAMES), value()), 0..8),
    ) {
        thread_local! { static API: Api = api(); }
        let mut body = format!("Action={action}&Version=2016-11-15");
        let mut seen = std::collections::HashSet::new();
        for (k, v) in &params {
            if seen.insert(*k) {
                body.push_str(&format!("&{}={}", encode(k), encode(v)));
            }
        }
        let resp = API.with(|a| a.handle(&signed(&body)));
        prop_assert!(resp.status < 500, "{body} -> {} {}", resp.status, resp.body);
        prop_assert!(resp.body.starts_with("<?xml"));
    }
}
