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
use strato_images::ImageStore;
use strato_net::{DataPlane, OutsideOptions};
use strato_runtime::qemu::{QemuConfig, QemuRuntime};
use strato_runtime::simulated::SimulatedRuntime;
use strato_store::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::config::{self, FileConfig};
use crate::credentials::KeyRing;
use crate::metadata::{Endpoint, StoreMetadata};

pub struct ServeArgs {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub images_dir: PathBuf,
    pub file: FileConfig,
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// The `(uid, gid)` of the user QEMU runs as, making the user if missing.
fn qemu_user(name: &str) -> Result<(u32, u32), String> {
    let lookup = || -> Option<(u32, u32)> {
        let out = std::process::Command::new("getent").args(["passwd", name]).output().ok()?;
        let line = String::from_utf8_lossy(&out.stdout).into_owned();
        let f: Vec<&str> = line.trim().split(':').collect();
        Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
    };
    if let Some(ids) = lookup() {
        return Ok(ids);
    }
    let made = std::process::Command::new("useradd")
        .args(["--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name])
        .status()
        .map_err(|e| format!("cannot run useradd to make the QEMU user '{name}': {e}"))?;
    if !made.success() {
        return Err(format!("useradd could not make the QEMU user '{name}'"));
    }
    lookup().ok_or_else(|| format!("the QEMU user '{name}' was made but cannot be found"))
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
    {
        // Others may pass through (QEMU, running as its own user, must reach
        // its instance's directory) but not list; the database is 0600.
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&args.data_dir, std::fs::Permissions::from_mode(0o711));
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
    let rt_cfg = &args.file.runtime;
    let kind = rt_cfg.kind.clone().unwrap_or_else(|| "qemu".into());
    let metadata_source = Arc::new(StoreMetadata { ec2: std::sync::OnceLock::new() });
    let runtime: Arc<dyn Runtime> = match kind.as_str() {
        "qemu" => {
            if !is_root() {
                return Err("the QEMU runtime needs root (network namespaces, tap devices, nftables). Run strato serve as root, \
                            or set [runtime] kind = \"simulated\" in the config for a control plane without VMs."
                    .into());
            }
            let (accel, why) = strato_runtime::accel::choose(rt_cfg.accel.as_deref().unwrap_or("auto"))?;
            tracing::info!(accel = %accel, reason = %why, "QEMU accelerator");
            let user = rt_cfg.qemu_user.clone().unwrap_or_else(|| "strato-qemu".into());
            let (uid, mut gid) = qemu_user(&user)?;
            if accel == strato_runtime::accel::Accel::Kvm {
                // KVM needs /dev/kvm, which its group may open.
                if let Ok(meta) = std::fs::metadata("/dev/kvm") {
                    use std::os::unix::fs::MetadataExt;
                    gid = meta.gid();
                }
            }
            let cfg = QemuConfig {
                state_dir: args.data_dir.join("instances"),
                volumes_dir: args.data_dir.join("volumes"),
                qemu_binary: rt_cfg.qemu_binary.clone().unwrap_or_else(|| "qemu-system-x86_64".into()),
                accel,
                run_as: Some((uid, gid)),
                stop_timeout: Duration::from_secs(rt_cfg.stop_timeout_secs.unwrap_or(30)),
                boot_watchdog: Duration::from_secs(rt_cfg.boot_watchdog_secs.unwrap_or(60)),
                cpu_overcommit: rt_cfg.cpu_overcommit.unwrap_or(8.0),
                memory_overcommit: rt_cfg.memory_overcommit.unwrap_or(1.5),
            };
            for d in [&cfg.state_dir, &cfg.volumes_dir] {
                std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711));
            }
            let imds = strato_imds::Imds::new(metadata_source.clone());
            let images = ImageStore::new(args.images_dir.clone());
            let pool = service_config.public_pool.to_string();
            let net = &args.file.network;
            let outside = OutsideOptions {
                host_route: net.host_route.unwrap_or(false).then(|| pool.clone()),
                internet_egress: net.internet_egress.unwrap_or(false),
                public_pool: Some(pool),
            };
            if outside.internet_egress {
                tracing::warn!("[network] internet_egress is on: instances with public addresses reach the internet through this host");
            }
            Arc::new(QemuRuntime::new(cfg, images, Arc::new(DataPlane::new(outside)), Arc::new(Endpoint(imds)), sink)?)
        }
        "simulated" => {
            let delay = Duration::from_millis(rt_cfg.simulated_delay_ms.unwrap_or(300));
            tracing::warn!("INSTANCES ARE SIMULATED: [runtime] kind = \"simulated\" starts no virtual machine for any instance");
            Arc::new(SimulatedRuntime::new(sink, delay)?)
        }
        other => return Err(format!("unknown runtime '{other}' (choose qemu or simulated)")),
    };

    let ec2 = Arc::new(Ec2::new(store.clone(), runtime.clone(), service_config, Arc::new(SystemClock)));
    let _ = metadata_source.ec2.set(ec2.clone());
    {
        let ec2 = ec2.clone();
        let runtime = runtime.clone();
        tokio::task::spawn_blocking(move || {
            ec2.ensure_builtin_images()?;
            ec2.sync_image_states()?;
            let live = ec2.live_instance_ids()?;
            runtime.adopt(&live);
            // The data plane starts empty: give it every VPC's policies
            // before any instance is (re)started.
            ec2.sync_all_networks()?;
            ec2.recover()
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("start-up: {e}"))?;
    }
    if kind == "qemu" && rt_cfg.build_default_image.unwrap_or(true) && !runtime.image_ready("minimal") {
        let ec2 = ec2.clone();
        let images = ImageStore::new(args.images_dir.clone());
        tokio::task::spawn_blocking(move || {
            tracing::info!("building the minimal image (first start); its AMI is pending until done");
            match images.build("minimal", &mut |msg: &str| tracing::info!("{msg}")) {
                Ok(_) => {
                    if let Err(e) = ec2.sync_image_states() {
                        tracing::error!(error = %e, "could not mark the minimal image available");
                    }
                }
                Err(e) => tracing::error!(error = %e, "building the minimal image failed; run `strato image build minimal` to see why"),
            }
        });
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
