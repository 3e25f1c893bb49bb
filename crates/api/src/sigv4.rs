//! AWS Signature Version 4, server side.
//!
//! Both forms are verified: the `Authorization: AWS4-HMAC-SHA256 …` header and
//! the presigned query (`X-Amz-Algorithm=…&X-Amz-Signature=…`). The canonical
//! request is rebuilt from the request exactly as received, following AWS's
//! specification, and the signature is compared in constant time. Nothing in
//! here trusts the request: every field is checked before it is used, and every
//! failure is an [`AuthError`], never a panic.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use strato_core::time::Timestamp;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// EC2 accepts requests dated up to 15 minutes away from its clock.
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// Presigned URLs may live at most seven days.
pub const MAX_EXPIRES_SECS: i64 = 7 * 24 * 3600;

/// A request as received, before any interpretation.
#[derive(Clone, Debug)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path as sent on the wire (still percent-encoded).
    pub path: &'a str,
    /// The query string as sent, without the `?`.
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub access_key: String,
    pub region: String,
    pub service: String,
    pub date: Timestamp,
    pub security_token: Option<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No signature of any form.
    #[error("Request is missing Authentication Token")]
    Missing,
    /// A signature whose parts are missing or malformed.
    #[error("{0}")]
    Incomplete(String),
    /// Outside the time window.
    #[error("{0}")]
    Expired(String),
    /// Unknown key, wrong signature, wrong scope.
    #[error("{0}")]
    Failure(String),
}

pub struct Options<'a> {
    /// Normalise the path (remove `.`/`..`, collapse `//`) before signing, as
    /// every service but S3 does.
    pub normalize_path: bool,
    /// The service the credential scope must name; `None` accepts any (tests).
    pub service: Option<&'a str>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options { normalize_path: true, service: Some("ec2") }
    }
}

const FAILED: &str = "AWS was not able to validate the provided access credentials";

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Percent-decodes `%XX`; a malformed escape is kept as it is.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// AWS's URI encoding: unreserved characters stay, everything else is `%XX`.
pub fn uri_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &c in bytes {
        let unreserved = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && c == b'/') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

fn normalize_path(path: &str) -> String {
    let mut segs: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(&segs.join("/"));
    if path.ends_with('/') && !segs.is_empty() {
        out.push('/');
    }
    out
}

fn canonical_uri(path: &str, normalize: bool) -> String {
    let p = if path.is_empty() { "/" } else { path };
    let p = if normalize { normalize_path(p) } else { p.to_string() };
    uri_encode(p.as_bytes(), true)
}

/// Splits a raw query into decoded pairs, in order.
pub fn query_pairs(query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(kv), Vec::new()),
        })
        .collect()
}

fn canonical_query(query: &str, presigned: Presigned) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .into_iter()
        .filter(|(k, _)| match presigned {
            Presigned::No => true,
            Presigned::Yes => k != b"X-Amz-Signature",
            Presigned::TokenAfter => k != b"X-Amz-Signature" && k != b"X-Amz-Security-Token",
        })
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// Trims a header value and collapses its inner runs of whitespace.
fn canonical_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn canonical_headers(headers: &[(String, String)], signed: &[&str]) -> Result<String, AuthError> {
    let mut out = String::new();
    for name in signed {
        let values: Vec<String> =
            headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| canonical_value(v)).collect();
        if values.is_empty() {
            return Err(AuthError::Failure(format!("The signed header '{name}' is not in the request")));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    Ok(out)
}

/// Which form a signature has, for building the canonical query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presigned {
    /// The `Authorization` header form.
    No,
    /// The presigned query form.
    Yes,
    /// The presigned form with `X-Amz-Security-Token` added after signing,
    /// which some AWS clients do; the token is then not part of the signature.
    TokenAfter,
}

/// The canonical request of the specification, for a given set of signed headers.
pub fn canonical_request(req: &SignedRequest<'_>, signed: &[&str], presigned: Presigned, normalize: bool) -> Result<String, AuthError> {
    let payload = hex::encode(Sha256::digest(req.body));
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.path, normalize),
        canonical_query(req.query, presigned),
        canonical_headers(req.headers, signed)?,
        signed.join(";"),
        payload
    ))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())))
}

/// The parts of a signature, from whichever form the request used.
struct Parts {
    credential: String,
    signed_headers: String,
    signature: String,
    amz_date: String,
    expires: Option<i64>,
    presigned: bool,
    token: Option<String>,
}

fn parts(req: &SignedRequest<'_>) -> Result<Parts, AuthError> {
    if let Some(auth) = header(req.headers, "authorization") {
        let Some(rest) = auth.strip_prefix(ALGORITHM) else {
            return Err(AuthError::Incomplete(format!(
                "Unsupported authorization type; only {ALGORITHM} (Signature Version 4) is accepted"
            )));
        };
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for item in rest.split(',') {
            let item = item.trim();
            if let Some((k, v)) = item.split_once('=') {
                match k.trim() {
                    "Credential" => credential = Some(v.trim().to_string()),
                    "SignedHeaders" => signed = Some(v.trim().to_string()),
                    "Signature" => signature = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        let mut missing = Vec::new();
        if credential.is_none() {
            missing.push("Authorization header requires 'Credential' parameter.");
        }
        if signature.is_none() {
            missing.push("Authorization header requires 'Signature' parameter.");
        }
        if signed.is_none() {
            missing.push("Authorization header requires 'SignedHeaders' parameter.");
        }
        let Some(amz_date) = header(req.headers, "x-amz-date") else {
            missing.push("Authorization header requires existence of a 'X-Amz-Date' header.");
            return Err(AuthError::Incomplete(missing.join(" ")));
        };
        if !missing.is_empty() {
            return Err(AuthError::Incomplete(missing.join(" ")));
        }
        return Ok(Parts {
            credential: credential.unwrap_or_default(),
            signed_headers: signed.unwrap_or_default(),
            signature: signature.unwrap_or_default(),
            amz_date: amz_date.trim().to_string(),
            expires: None,
            presigned: false,
            token: header(req.headers, "x-amz-security-token").map(str::to_string),
        });
    }
    let q = query_pairs(req.query);
    let get = |name: &str| -> Option<String> {
        q.iter().find(|(k, _)| k == name.as_bytes()).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let Some(algorithm) = get("X-Amz-Algorithm") else {
        return Err(AuthError::Missing);
    };
    if algorithm != ALGORITHM {
        return Err(AuthError::Incomplete(format!("Unsupported X-Amz-Algorithm '{algorithm}'; only {ALGORITHM} is accepted")));
    }
    let mut missing = Vec::new();
    for p in ["X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"] {
        if get(p).is_none() {
            missing.push(format!("The query string requires the '{p}' parameter."));
        }
    }
    if !missing.is_empty() {
        return Err(AuthError::Incomplete(missing.join(" ")));
    }
    let expires = match get("X-Amz-Expires") {
        Some(e) => Some(
            e.parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_EXPIRES_SECS).contains(n))
                .ok_or_else(|| AuthError::Incomplete(format!("X-Amz-Expires must be a number of seconds from 1 to {MAX_EXPIRES_SECS}")))?,
        ),
        None => None,
    };
    Ok(Parts {
        credential: get("X-Amz-Credential").unwrap_or_default(),
        signed_headers: get("X-Amz-SignedHeaders").unwrap_or_default(),
        signature: get("X-Amz-Signature").unwrap_or_default(),
        amz_date: get("X-Amz-Date").unwrap_or_default(),
        expires,
        presigned: true,
        token: get("X-Amz-Security-Token"),
    })
}

/// Verifies a request's signature. `secret_of` gives the secret of an access
/// key, or `None` for an unknown key.
pub fn verify(
    req: &SignedRequest<'_>,
    now: Timestamp,
    secret_of: &dyn Fn(&str) -> Option<String>,
    opts: &Options<'_>,
) -> Result<Verified, AuthError> {
    let p = parts(req)?;
    let scope_parts: Vec<&str> = p.credential.split('/').collect();
    if scope_parts.len() != 5 || scope_parts.iter().any(|s| s.is_empty()) {
        return Err(AuthError::Incomplete(format!(
            "Credential '{}' is malformed: expected <access key>/<YYYYMMDD>/<region>/<service>/aws4_request",
            p.credential
        )));
    }
    let (access_key, scope_date, region, service, terminator) =
        (scope_parts[0], scope_parts[1], scope_parts[2], scope_parts[3], scope_parts[4]);
    if terminator != "aws4_request" {
        return Err(AuthError::Failure(format!("Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'.")));
    }
    let date = Timestamp::parse_amz_date(&p.amz_date)
        .ok_or_else(|| AuthError::Incomplete(format!("X-Amz-Date '{}' is not of the form YYYYMMDD'T'HHMMSS'Z'", p.amz_date)))?;
    if !p.amz_date.starts_with(scope_date) || scope_date.len() != 8 {
        return Err(AuthError::Failure(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{}'",
            p.amz_date.get(..8).unwrap_or("")
        )));
    }
    if let Some(want) = opts.service {
        if service != want {
            return Err(AuthError::Failure(format!("Credential should be scoped to correct service: '{want}'.")));
        }
    }
    match p.expires {
        Some(expires) => {
            if now.secs() > date.secs() + expires {
                return Err(AuthError::Expired(format!(
                    "Request has expired: the presigned URL was valid until {}",
                    date.plus_secs(expires).iso8601()
                )));
            }
            if date.secs() > now.secs() + MAX_SKEW_SECS {
                return Err(AuthError::Expired("Request is dated more than 15 minutes in the future".into()));
            }
        }
        None => {
            if (now.secs() - date.secs()).abs() > MAX_SKEW_SECS {
                return Err(AuthError::Expired(format!(
                    "Request has expired: its date {} is more than 15 minutes from the server's time {}",
                    date.iso8601(),
                    now.iso8601()
                )));
            }
        }
    }
    let signed: Vec<&str> = p.signed_headers.split(';').collect();
    if signed.iter().any(|h| h.is_empty() || *h != h.to_ascii_lowercase()) {
        return Err(AuthError::Incomplete(format!("SignedHeaders '{}' is malformed", p.signed_headers)));
    }
    if !signed.contains(&"host") {
        return Err(AuthError::Failure("'Host' must be a signed header".into()));
    }
    if let Some(claimed) = header(req.headers, "x-amz-content-sha256") {
        let actual = hex::encode(Sha256::digest(req.body));
        if claimed.trim() != actual {
            return Err(AuthError::Failure("The x-amz-content-sha256 header does not match the body".into()));
        }
    }
    let Some(secret) = secret_of(access_key) else {
        return Err(AuthError::Failure(FAILED.into()));
    };
    let scope = format!("{scope_date}/{region}/{service}/aws4_request");
    let key = signing_key(&secret, scope_date, region, service);
    let forms: &[Presigned] = match (p.presigned, p.token.is_some()) {
        (false, _) => &[Presigned::No],
        (true, false) => &[Presigned::Yes],
        (true, true) => &[Presigned::Yes, Presigned::TokenAfter],
    };
    let mut ok = false;
    for form in forms {
        let canonical = canonical_request(req, &signed, *form, opts.normalize_path)?;
        let sts = string_to_sign(&p.amz_date, &scope, &canonical);
        let expected = hex::encode(hmac(&key, sts.as_bytes()));
        ok |= bool::from(expected.as_bytes().ct_eq(p.signature.as_bytes()));
    }
    if !ok {
        return Err(AuthError::Failure(FAILED.into()));
    }
    Ok(Verified {
        access_key: access_key.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        date,
        security_token: p.token,
    })
}

/// Signs a request in the header form. Used by the load generator and tests;
/// returns the `Authorization` header value.
pub fn sign_headers(req: &SignedRequest<'_>, access_key: &str, secret: &str, region: &str, service: &str, amz_date: &str) -> Result<String, AuthError> {
    let mut signed: Vec<String> = req.headers.iter().map(|(k, _)| k.to_ascii_lowercase()).collect();
    signed.sort();
    signed.dedup();
    let signed_refs: Vec<&str> = signed.iter().map(String::as_str).collect();
    let canonical = canonical_request(req, &signed_refs, Presigned::No, true)?;
    let date = amz_date.get(..8).unwrap_or("");
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let sts = string_to_sign(amz_date, &scope, &canonical);
    let sig = hex::encode(hmac(&signing_key(secret, date, region, service), sts.as_bytes()));
    Ok(format!("{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={}, Signature={sig}", signed.join(";")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_like_the_spec() {
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path("//example//"), "/example/");
        assert_eq!(normalize_path("/./example"), "/example");
        assert_eq!(normalize_path("/example/.."), "/");
        assert_eq!(normalize_path("/example1/example2/../.."), "/");
        assert_eq!(normalize_path("/a/./b/../c"), "/a/c");
        assert_eq!(normalize_path("/../.."), "/");
    }

    #[test]
    fn encoding() {
        assert_eq!(uri_encode("a b/c~".as_bytes(), true), "a%20b/c~");
        assert_eq!(uri_encode("a b/c".as_bytes(), false), "a%20b%2Fc");
        assert_eq!(percent_decode("%E1%88%B4x%2"), vec![0xE1, 0x88, 0xB4, b'x', b'%', b'2']);
        assert_eq!(percent_decode("%"), b"%".to_vec());
        assert_eq!(percent_decode("%zz"), b"%zz".to_vec());
    }
}
