//! The EC2 Query wire protocol: SigV4 verification, parameters into typed
//! requests, XML out, and errors mapped to EC2 codes. It knows nothing of
//! HTTP servers, SQL or QEMU: the binary hands it a request as bytes and sends
//! back what it returns.

pub mod actions;
pub mod error;
pub mod query;
pub mod sigv4;
pub mod xml;

use std::sync::Arc;

use strato_core::ids::{random_hex, AccountId, Region};
use strato_core::service::{Ctx, Ec2};
use strato_core::time::Clock;

pub use error::ApiError;
use query::{Params, Scope};
use xml::Xml;

/// The largest request body accepted. EC2 requests are small; the biggest
/// ordinary one is `RunInstances` with 16 KiB of base64 user data.
pub const MAX_BODY: usize = 1024 * 1024;

/// A request as received, already separated into its parts.
#[derive(Clone, Debug, Default)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
    pub request_id: String,
}

/// Where access keys come from (the config file and the store).
pub trait Credentials: Send + Sync {
    /// The secret and account of an access key.
    fn lookup(&self, access_key_id: &str) -> Option<(String, AccountId)>;
}

/// What one action handler works with.
pub struct Call<'a> {
    pub ec2: &'a Ec2,
    pub ctx: Ctx,
    pub p: Scope<'a>,
    params: &'a Params,
    pub xml: Xml,
}

impl Call<'_> {
    /// The line between parsing and acting. Every handler calls it after it
    /// has read all its parameters and before it changes anything: a parameter
    /// nobody read is `UnknownParameter`, and `DryRun=true` stops here with
    /// `DryRunOperation`, so a dry run can never have a side effect.
    pub fn ready(&self) -> Result<(), ApiError> {
        let dry = self.p.dry_run()?;
        if let Some(name) = self.params.unknown() {
            return Err(strato_core::Error::UnknownParameter(name).into());
        }
        if dry {
            return Err(ApiError::DryRun);
        }
        Ok(())
    }
}

pub struct Api {
    ec2: Arc<Ec2>,
    credentials: Arc<dyn Credentials>,
    clock: Arc<dyn Clock>,
}

/// A request id in the UUID form AWS uses.
pub fn new_request_id() -> String {
    let h = random_hex(32);
    format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// Does this request ask for an action that takes long enough (generating an
/// RSA key) to deserve a thread of its own? A cheap look at the raw bytes: a
/// wrong guess only costs a thread switch.
pub fn is_slow(req: &HttpRequest) -> bool {
    let needle = b"Action=CreateKeyPair";
    req.body.windows(needle.len()).any(|w| w == needle) || req.query.contains("Action=CreateKeyPair")
}

fn is_form(req: &HttpRequest) -> bool {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
        .unwrap_or(false)
}

impl Api {
    pub fn new(ec2: Arc<Ec2>, credentials: Arc<dyn Credentials>, clock: Arc<dyn Clock>) -> Api {
        Api { ec2, credentials, clock }
    }

    pub fn ec2(&self) -> &Arc<Ec2> {
        &self.ec2
    }

    /// Handles one request end to end. Never panics on client input; every
    /// failure becomes an EC2 error document.
    pub fn handle(&self, req: &HttpRequest) -> HttpResponse {
        let request_id = new_request_id();
        match self.process(req, &request_id) {
            Ok(body) => HttpResponse { status: 200, body, request_id },
            Err((action, e)) => {
                let (code, status) = e.wire();
                if status >= 500 {
                    tracing::error!(request_id, action, code, error = %e, "request failed");
                } else {
                    tracing::debug!(request_id, action, code, error = %e, "request refused");
                }
                HttpResponse { status, body: e.to_xml(&request_id), request_id }
            }
        }
    }

    fn process(&self, req: &HttpRequest, request_id: &str) -> Result<String, (String, ApiError)> {
        let fail = |e: ApiError| (String::new(), e);
        if req.body.len() > MAX_BODY {
            return Err(fail(ApiError::TooLarge(MAX_BODY)));
        }
        let signed = sigv4::SignedRequest {
            method: &req.method,
            path: &req.path,
            query: &req.query,
            headers: &req.headers,
            body: &req.body,
        };
        // Look the key up once: the verifier needs its secret, the call its account.
        let found: std::cell::RefCell<Option<AccountId>> = std::cell::RefCell::new(None);
        let secret_of = |key: &str| {
            self.credentials.lookup(key).map(|(secret, account)| {
                *found.borrow_mut() = Some(account);
                secret
            })
        };
        let verified = sigv4::verify(&signed, self.clock.now(), &secret_of, &sigv4::Options::default())
            .map_err(|e| fail(e.into()))?;
        if verified.security_token.is_some() {
            return Err(fail(ApiError::SecurityToken));
        }
        let Some(account) = found.into_inner() else {
            return Err(fail(sigv4::AuthError::Failure("unknown access key".into()).into()));
        };
        if !self.ec2.serves_region(&verified.region) {
            return Err(fail(ApiError::InvalidRegion(verified.region)));
        }
        let body = if req.method == "POST" && (is_form(req) || !req.body.is_empty()) {
            std::str::from_utf8(&req.body)
                .map_err(|_| fail(strato_core::Error::InvalidParameterValue("The request body must be UTF-8 text".into()).into()))?
        } else {
            ""
        };
        let params = Params::parse(&[&req.query, body]).map_err(|e| fail(e.into()))?;
        let Some(action) = params.raw("Action").map(str::to_string) else {
            return Err(fail(ApiError::MissingAction));
        };
        let Some(handler) = actions::handler(&action) else {
            return Err((action.clone(), ApiError::InvalidAction(action)));
        };
        if params.raw("Version").is_none_or(str::is_empty) {
            return Err((action, strato_core::Error::MissingParameter("Version".into()).into()));
        }
        let host = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let ctx = Ctx { account, region: Region::new_unchecked(&verified.region), host };
        let mut call = Call { ec2: &self.ec2, ctx, p: params.root(), params: &params, xml: Xml::response(&action, request_id) };
        match handler(&mut call) {
            Ok(()) => Ok(call.xml.finish(&action)),
            Err(e) => Err((action, e)),
        }
    }
}
