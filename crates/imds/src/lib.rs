//! The instance metadata service, as EC2 has it at 169.254.169.254.
//!
//! Each instance gets a listener of its own (made by the data plane inside the
//! instance's VPC namespace, reachable only from the instance's own tap), so
//! the listener a request arrives on *is* the instance's identity; nothing the
//! guest sends can change it. IMDSv2 tokens are HMACs over the instance id and
//! an expiry under a secret of this process, so a token minted for one
//! instance is worthless on another and none survives a restart.

mod tree;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::task::JoinHandle;

pub use tree::InstanceMetadata;

pub const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
pub const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
pub const MAX_TTL: u64 = 21600;

/// Where the metadata of an instance comes from (the control plane's store).
pub trait MetadataSource: Send + Sync {
    fn metadata(&self, instance_id: &str) -> Option<InstanceMetadata>;
}

pub struct Imds {
    source: Arc<dyn MetadataSource>,
    secret: [u8; 32],
    listeners: Mutex<HashMap<String, JoinHandle<()>>>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain"));
    r
}

impl Imds {
    pub fn new(source: Arc<dyn MetadataSource>) -> Arc<Imds> {
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        Arc::new(Imds { source, secret, listeners: Mutex::new(HashMap::new()) })
    }

    fn mac(&self, instance: &str, expiry: u64) -> Vec<u8> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!());
        m.update(instance.as_bytes());
        m.update(b"\0");
        m.update(&expiry.to_be_bytes());
        m.finalize().into_bytes().to_vec()
    }

    pub fn mint(&self, instance: &str, ttl: u64) -> String {
        let expiry = now() + ttl;
        format!("{expiry}.{}", hex::encode(self.mac(instance, expiry)))
    }

    /// Is `token` a live token of `instance`?
    pub fn valid(&self, instance: &str, token: &str) -> bool {
        let Some((exp, mac)) = token.split_once('.') else { return false };
        let Ok(expiry) = exp.parse::<u64>() else { return false };
        let Ok(mac) = hex::decode(mac) else { return false };
        if expiry <= now() {
            return false;
        }
        bool::from(self.mac(instance, expiry).ct_eq(&mac))
    }

    /// Serves the metadata of `instance` on `listener` until `stop`.
    pub fn serve(self: &Arc<Self>, instance: &str, listener: StdListener) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let me = self.clone();
        let id = instance.to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let hop_limit = me.source.metadata(&id).map(|m| m.hop_limit).unwrap_or(1);
                // EC2 sends metadata with the hop limit as IP TTL, so a
                // response cannot travel further than the instance allows.
                let _ = stream.set_ttl(hop_limit.clamp(1, 64));
                let me = me.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let me = me.clone();
                        let id = id.clone();
                        async move { Ok::<_, Infallible>(me.handle(&id, req)) }
                    });
                    // Simple clients (busybox nc) close their sending side right
                    // after the request; half-close keeps the response coming.
                    let _ = http1::Builder::new().half_close(true).serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        if let Some(old) = self.listeners.lock().unwrap_or_else(|p| p.into_inner()).insert(instance.to_string(), task) {
            old.abort();
        }
        Ok(())
    }

    pub fn stop(&self, instance: &str) {
        if let Some(t) = self.listeners.lock().unwrap_or_else(|p| p.into_inner()).remove(instance) {
            t.abort();
        }
    }

    pub fn handle(&self, instance: &str, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        self.answer(instance, req.method(), req.uri().path(), &header)
    }

    /// The core of the service, independent of the HTTP machinery.
    pub fn answer(&self, instance: &str, method: &Method, path: &str, header: &dyn Fn(&str) -> Option<String>) -> Response<Full<Bytes>> {
        let Some(md) = self.source.metadata(instance) else {
            return text(StatusCode::NOT_FOUND, "Not Found");
        };
        if !md.endpoint_enabled {
            return text(StatusCode::FORBIDDEN, "Forbidden");
        }
        if method == Method::PUT {
            if path != "/latest/api/token" {
                return text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            }
            // A token request that went through a proxy is refused, as on EC2.
            if header("x-forwarded-for").is_some() {
                return text(StatusCode::FORBIDDEN, "Forbidden");
            }
            let ttl = header(TTL_HEADER).and_then(|v| v.trim().parse::<u64>().ok());
            return match ttl {
                Some(t) if (1..=MAX_TTL).contains(&t) => {
                    let mut r = text(StatusCode::OK, self.mint(instance, t));
                    if let Ok(v) = hyper::header::HeaderValue::from_str(&t.to_string()) {
                        r.headers_mut().insert(TTL_HEADER, v);
                    }
                    r
                }
                _ => text(StatusCode::BAD_REQUEST, "Missing or Invalid Parameters"),
            };
        }
        if method != Method::GET && method != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        }
        match header(TOKEN_HEADER) {
            Some(t) if !self.valid(instance, &t) => return text(StatusCode::UNAUTHORIZED, "Unauthorized"),
            Some(_) => {}
            None if md.tokens_required => return text(StatusCode::UNAUTHORIZED, "Unauthorized"),
            None => {}
        }
        match tree::lookup(&md, path) {
            Some(body) => text(StatusCode::OK, body),
            None => text(StatusCode::NOT_FOUND, "Not Found"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct One(InstanceMetadata);
    impl MetadataSource for One {
        fn metadata(&self, id: &str) -> Option<InstanceMetadata> {
            (id == self.0.instance_id).then(|| self.0.clone())
        }
    }

    fn md(required: bool) -> InstanceMetadata {
        InstanceMetadata { tokens_required: required, ..tree::tests::sample() }
    }

    fn get(imds: &Imds, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let h: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let r = imds.answer("i-0123456789abcdef0", &Method::GET, path, &lookup);
        (r.status().as_u16(), body(r))
    }

    fn body(r: Response<Full<Bytes>>) -> String {
        use http_body_util::BodyExt;
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("rt");
        let b = rt.block_on(r.into_body().collect()).map(|c| c.to_bytes()).unwrap_or_default();
        String::from_utf8_lossy(&b).into_owned()
    }

    fn put(imds: &Imds, ttl: Option<&str>, xff: bool) -> (u16, String) {
        let mut h: Vec<(String, String)> = vec![];
        if let Some(t) = ttl {
            h.push((TTL_HEADER.into(), t.into()));
        }
        if xff {
            h.push(("x-forwarded-for".into(), "1.2.3.4".into()));
        }
        let lookup = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let r = imds.answer("i-0123456789abcdef0", &Method::PUT, "/latest/api/token", &lookup);
        (r.status().as_u16(), body(r))
    }

    #[test]
    fn tokens_are_required_when_configured() {
        let imds = Imds::new(Arc::new(One(md(true))));
        assert_eq!(get(&imds, "/latest/meta-data/instance-id", &[]).0, 401);
        let (s, tok) = put(&imds, Some("60"), false);
        assert_eq!(s, 200);
        assert_eq!(get(&imds, "/latest/meta-data/instance-id", &[(TOKEN_HEADER, &tok)]), (200, "i-0123456789abcdef0".into()));
        assert_eq!(get(&imds, "/latest/meta-data/instance-id", &[(TOKEN_HEADER, "123.abc")]).0, 401);
    }

    #[test]
    fn token_requests_are_checked() {
        let imds = Imds::new(Arc::new(One(md(false))));
        assert_eq!(put(&imds, None, false).0, 400);
        assert_eq!(put(&imds, Some("0"), false).0, 400);
        assert_eq!(put(&imds, Some("21601"), false).0, 400);
        assert_eq!(put(&imds, Some("21600"), false).0, 200);
        assert_eq!(put(&imds, Some("10"), true).0, 403);
        assert_eq!(get(&imds, "/latest/meta-data/instance-id", &[]).0, 200, "IMDSv1 when tokens are optional");
    }

    #[test]
    fn a_token_is_bound_to_its_instance_and_expires() {
        let imds = Imds::new(Arc::new(One(md(true))));
        let other = imds.mint("i-ffffffffffffffff0", 60);
        assert!(!imds.valid("i-0123456789abcdef0", &other));
        let expired = format!("{}.{}", now() - 1, hex::encode(imds.mac("i-0123456789abcdef0", now() - 1)));
        assert!(!imds.valid("i-0123456789abcdef0", &expired));
        let fresh = imds.mint("i-0123456789abcdef0", 60);
        assert!(imds.valid("i-0123456789abcdef0", &fresh));
    }
}
