//! AWS's SigV4 test suite, every case in both the header and the presigned
//! query form: each must verify, our canonical request must equal AWS's, and
//! changing any one signed byte must make verification fail.

use std::fs;
use std::path::{Path, PathBuf};

use strato_api::sigv4::{canonical_request, verify, AuthError, Options, Presigned, SignedRequest};
use strato_core::time::Timestamp;

struct Parsed {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Parsed {
    fn as_signed(&self) -> SignedRequest<'_> {
        SignedRequest { method: &self.method, path: &self.path, query: &self.query, headers: &self.headers, body: &self.body }
    }
}

/// Reads the suite's request files: a request line, headers (continuation
/// lines start with whitespace), a blank line, the body.
fn parse_request(text: &str) -> Parsed {
    let (head, body) = match text.find("\n\n") {
        Some(i) => (&text[..i], text.as_bytes()[i + 2..].to_vec()),
        None => (text.trim_end_matches('\n'), Vec::new()),
    };
    let mut lines = head.lines();
    let first = lines.next().expect("request line");
    let method = first.split(' ').next().expect("method").to_string();
    let target = first[method.len() + 1..first.rfind(" HTTP/").expect("version")].to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            let last = headers.last_mut().expect("continuation after a header");
            last.1.push('\n');
            last.1.push_str(line);
        } else {
            let (k, v) = line.split_once(':').expect("header");
            headers.push((k.to_string(), v.to_string()));
        }
    }
    let mut body = body;
    if let Some((_, len)) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
        body.truncate(len.trim().parse().expect("length"));
    }
    Parsed { method, path, query, headers, body }
}

struct Case {
    name: String,
    dir: PathBuf,
    now: Timestamp,
    normalize: bool,
    token_after: bool,
    access_key: String,
    secret: String,
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigv4-test-suite")
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for entry in fs::read_dir(suite_dir()).expect("suite dir") {
        let dir = entry.expect("entry").path();
        let ctx_path = dir.join("context.json");
        if !ctx_path.exists() {
            continue;
        }
        let ctx: serde_json::Value = serde_json::from_str(&fs::read_to_string(&ctx_path).expect("context")).expect("json");
        let ts = ctx["timestamp"].as_str().expect("timestamp").replace(['-', ':'], "");
        out.push(Case {
            name: dir.file_name().expect("name").to_string_lossy().into_owned(),
            now: Timestamp::parse_amz_date(&ts).expect("timestamp form"),
            normalize: ctx["normalize"].as_bool().unwrap_or(true),
            token_after: ctx["omit_session_token"].as_bool().unwrap_or(false),
            access_key: ctx["credentials"]["access_key_id"].as_str().expect("key").to_string(),
            secret: ctx["credentials"]["secret_access_key"].as_str().expect("secret").to_string(),
            dir,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(out.len() >= 30, "the whole suite is present ({} cases)", out.len());
    out
}

fn check(case: &Case, req: &Parsed) -> Result<(), AuthError> {
    let key = case.access_key.clone();
    let secret = case.secret.clone();
    let lookup = move |k: &str| (k == key).then(|| secret.clone());
    let opts = Options { normalize_path: case.normalize, service: None };
    verify(&req.as_signed(), case.now, &lookup, &opts).map(|_| ())
}

fn signed_headers_of(req: &Parsed, presigned: bool) -> Option<Vec<String>> {
    let list = if presigned {
        req.query.split('&').find_map(|kv| kv.strip_prefix("X-Amz-SignedHeaders="))?.replace("%3B", ";")
    } else {
        let auth = &req.headers.iter().find(|(k, _)| k == "Authorization")?.1;
        auth.split("SignedHeaders=").nth(1)?.split(',').next()?.to_string()
    };
    Some(list.split(';').map(str::to_string).collect())
}

fn canonical(case: &Case, req: &Parsed, presigned: bool) -> Option<String> {
    let signed = signed_headers_of(req, presigned)?;
    let refs: Vec<&str> = signed.iter().map(String::as_str).collect();
    let form = match (presigned, case.token_after) {
        (false, _) => Presigned::No,
        (true, false) => Presigned::Yes,
        (true, true) => Presigned::TokenAfter,
    };
    canonical_request(&req.as_signed(), &refs, form, case.normalize).ok()
}

fn other_char(c: u8) -> u8 {
    if c == b'a' {
        b'b'
    } else {
        b'a'
    }
}

fn flip_str(s: &str, i: usize) -> Option<String> {
    let mut b = s.as_bytes().to_vec();
    b[i] = other_char(b[i]);
    String::from_utf8(b).ok()
}

/// Every single-byte change to a signed part of the request, paired with a
/// description. Changes that leave the canonical request as it was (a byte in
/// a path segment that normalisation removes) are not changes to what was
/// signed, so they are left out.
fn mutations(case: &Case, req: &Parsed, presigned: bool) -> Vec<(String, Parsed)> {
    let base = canonical(case, req, presigned);
    let signed = signed_headers_of(req, presigned).expect("signed headers");
    let mut out = Vec::new();
    let clone = |r: &Parsed| Parsed {
        method: r.method.clone(),
        path: r.path.clone(),
        query: r.query.clone(),
        headers: r.headers.clone(),
        body: r.body.clone(),
    };
    for i in 0..req.method.len() {
        let mut m = clone(req);
        m.method = flip_str(&req.method, i).expect("ascii");
        out.push((format!("method byte {i}"), m));
    }
    for i in 0..req.path.len() {
        if let Some(p) = flip_str(&req.path, i) {
            let mut m = clone(req);
            m.path = p;
            out.push((format!("path byte {i}"), m));
        }
    }
    for i in 0..req.query.len() {
        if let Some(q) = flip_str(&req.query, i) {
            let mut m = clone(req);
            m.query = q;
            out.push((format!("query byte {i}"), m));
        }
    }
    for (hi, (name, value)) in req.headers.iter().enumerate() {
        let lname = name.to_ascii_lowercase();
        let is_sig = lname == "authorization";
        if !signed.contains(&lname) && !is_sig {
            continue;
        }
        for i in 0..value.len() {
            if let Some(v) = flip_str(value, i) {
                let mut m = clone(req);
                m.headers[hi].1 = v;
                out.push((format!("header {name} byte {i}"), m));
            }
        }
    }
    for i in 0..req.body.len() {
        let mut m = clone(req);
        m.body[i] = other_char(m.body[i]);
        out.push((format!("body byte {i}"), m));
    }
    out.into_iter()
        .filter(|(what, m)| what.starts_with("header Authorization") || what.contains("X-Amz-Signature") || canonical(case, m, presigned) != base || canonical(case, m, presigned).is_none())
        .collect()
}

fn run_form(form: &str) {
    let presigned = form == "query";
    let mut checked = 0;
    for case in cases() {
        let text = fs::read_to_string(case.dir.join(format!("{form}-signed-request.txt"))).expect("signed request");
        let req = parse_request(&text);
        check(&case, &req).unwrap_or_else(|e| panic!("{} ({form}) should verify: {e:?}", case.name));
        let expected = fs::read_to_string(case.dir.join(format!("{form}-canonical-request.txt"))).expect("canonical");
        assert_eq!(canonical(&case, &req, presigned).as_deref(), Some(expected.as_str()), "{} ({form}) canonical request", case.name);
        let muts = mutations(&case, &req, presigned);
        assert!(muts.len() > 10, "{} ({form}) has signed bytes to change", case.name);
        for (what, m) in muts {
            assert!(check(&case, &m).is_err(), "{} ({form}): changing {what} must be rejected", case.name);
        }
        // And with the wrong secret nothing verifies.
        let wrong = Case { secret: format!("{}x", case.secret), ..case };
        assert!(check(&wrong, &req).is_err());
        checked += 1;
    }
    assert!(checked >= 30);
}

#[test]
fn header_form_vectors() {
    run_form("header");
}

#[test]
fn query_form_vectors() {
    run_form("query");
}
