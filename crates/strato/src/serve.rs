//! `strato serve`: open the store, start the runtime, recover instances, and
//! answer the EC2 Query API over HTTP.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use strato_api::{Api, ApiError, HttpRequest, HttpResponse, MAX_BODY};
use strato_core::ids::InstanceId;
use strato_core::lifecycle::Observation;
use strato_core::runtime::{EventSink, Runtime};
use strato_core::service::Ec2;
use strato_core::store::Store;
use strato_core::time::SystemClock;
use strato_runtime::simulated::SimulatedRuntime;
use strato_store::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::config::{self, FileConfig};
use crate::credentials::KeyRing;

pub struct ServeArgs {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub file: FileConfig,
}

/// Forwards runtime reports to the task that applies them, so a runtime never
/// calls into the control plane on its own threads.
struct ChannelSink(mpsc::UnboundedSender<(InstanceId, Observation)>);

impl EventSink for ChannelSink {
    fn report(&self, id: &InstanceId, observation: Observation) {
        let _ = self.0.send((id.clone(), observation));
    }
}

fn to_hyper(r: HttpResponse) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(r.body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(r.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/xml;charset=UTF-8"));
    if let Ok(v) = hyper::header::HeaderValue::from_str(&r.request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

async fn handle(api: Arc<Api>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => {
            let id = strato_api::new_request_id();
            let e = ApiError::TooLarge(MAX_BODY);
            return Ok(to_hyper(HttpResponse { status: e.wire().1, body: e.to_xml(&id), request_id: id }));
        }
    };
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let http = HttpRequest {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers,
        body,
    };
    // Requests take well under a millisecond of store work, so they run right
    // here: handing each to the blocking pool costs two thread switches, more
    // than the work. Generating an RSA key takes tens of milliseconds, so that
    // one action goes to the blocking pool to keep the I/O threads free.
    let slow = strato_api::is_slow(&http);
    let resp = if slow {
        match tokio::task::spawn_blocking(move || api.handle(&http)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "request handler panicked");
                let id = strato_api::new_request_id();
                let e = ApiError::Domain(strato_core::Error::internal("handler panicked"));
                HttpResponse { status: 500, body: e.to_xml(&id), request_id: id }
            }
        }
    } else {
        api.handle(&http)
    };
    Ok(to_hyper(resp))
}

pub async fn run(args: ServeArgs) -> Result<(), String> {
    let service_config = config::service_config(&args.file)?;
    let db_path = args.data_dir.join("strato.db");
    std::fs::create_dir_all(&args.data_dir).map_err(|e| format!("creating {}: {e}", args.data_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&args.data_dir, std::fs::Permissions::from_mode(0o700));
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db_path).map_err(|e| e.to_string())?);

    let loopback = args.listen.ip().is_loopback();
    let probe = KeyRing::new(&args.file.accounts, store.clone(), false)?;
    let real_keys = probe.has_real_keys();
    if !loopback && !real_keys {
        return Err(format!(
            "refusing to listen on {} without credentials: the development key ({}/{}) is only accepted on a loopback address. \
             Configure an account with access keys in the config file ([[accounts]] with [[accounts.access_keys]]) \
             or create one with `strato admin create-account`, then start again.",
            args.listen,
            config::DEV_ACCESS_KEY,
            config::DEV_SECRET_KEY
        ));
    }
    let dev = loopback && !real_keys;
    let keys = Arc::new(KeyRing::new(&args.file.accounts, store.clone(), dev)?);
    if dev {
        tracing::warn!(
            access_key = config::DEV_ACCESS_KEY,
            account = config::DEV_ACCOUNT,
            "no credentials configured: accepting the development key test/test on loopback"
        );
    }

    let (tx, mut rx) = mpsc::unbounded_channel();
    let sink = Arc::new(ChannelSink(tx));
    let kind = args.file.runtime.kind.clone().unwrap_or_else(|| "simulated".into());
    let runtime: Arc<dyn Runtime> = match kind.as_str() {
        "simulated" => {
            let delay = Duration::from_millis(args.file.runtime.simulated_delay_ms.unwrap_or(300));
            Arc::new(SimulatedRuntime::new(sink, delay)?)
        }
        other => return Err(format!("unknown runtime '{other}' (this build has: simulated)")),
    };
    tracing::warn!(
        runtime = %runtime.name(),
        "INSTANCES ARE SIMULATED: no virtual machine is started for any instance; the QEMU runtime is not in this build yet"
    );

    let ec2 = Arc::new(Ec2::new(store.clone(), runtime, service_config, Arc::new(SystemClock)));
    {
        let ec2 = ec2.clone();
        tokio::task::spawn_blocking(move || {
            ec2.ensure_builtin_images()?;
            ec2.recover()
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("start-up: {e}"))?;
    }

    // Apply the runtime's reports in order.
    {
        let ec2 = ec2.clone();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while rx.recv_many(&mut batch, 256).await > 0 {
                let ec2 = ec2.clone();
                let reports = std::mem::take(&mut batch);
                let r = tokio::task::spawn_blocking(move || ec2.apply_observations(reports)).await;
                if let Ok(Err(e)) = r {
                    tracing::error!(error = %e, "applying runtime reports failed");
                }
            }
        });
    }
    // Forget terminated instances after their retention.
    {
        let ec2 = ec2.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                let ec2 = ec2.clone();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || ec2.sweep_terminated()).await {
                    tracing::error!(error = %e, "sweeping terminated instances failed");
                }
            }
        });
    }

    let api = Arc::new(Api::new(ec2, keys, Arc::new(SystemClock)));
    let listener = TcpListener::bind(args.listen).await.map_err(|e| format!("listening on {}: {e}", args.listen))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(listen = %bound, data_dir = %args.data_dir.display(), "strato is ready");

    let shutdown = async {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("shutting down");
                return Ok(());
            }
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let api = api.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(api.clone(), req));
                    if let Err(e) = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
}
