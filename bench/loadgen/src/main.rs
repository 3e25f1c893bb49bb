//! Load generator for the API benchmark.
//!
//! Sends SigV4-signed EC2 Query requests (signed with Strato's own signer,
//! which is checked against AWS's test vectors) to any EC2 endpoint, Strato or
//! a peer, and reports throughput and latency percentiles as JSON. It parses
//! nothing of the responses beyond the ids it needs, so the client costs little
//! next to the server under test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use strato_api::sigv4::{self, SignedRequest};
use strato_core_time::amz_date;

mod strato_core_time {
    /// `YYYYMMDDTHHMMSSZ` for now, without pulling in the domain crate.
    pub fn amz_date(secs: u64) -> String {
        let days = (secs / 86400) as i64;
        let sod = secs % 86400;
        let z = days + 719468;
        let era = z.div_euclid(146097);
        let doe = z - era * 146097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
        format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", sod / 3600, (sod / 60) % 60, sod % 60)
    }
}

#[derive(Parser, Clone)]
struct Args {
    /// Endpoint, e.g. http://127.0.0.1:8773
    #[arg(long)]
    endpoint: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long, default_value = "test")]
    access_key: String,
    #[arg(long, default_value = "test")]
    secret_key: String,
    /// setup | describe | describe-tag | run | create-tags
    #[arg(long)]
    scenario: String,
    /// Instances to create in `setup`.
    #[arg(long, default_value_t = 500)]
    instances: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seconds to run a scenario for.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Stop a scenario after this many requests (whichever comes first).
    #[arg(long, default_value_t = usize::MAX)]
    max_requests: usize,
    /// A label for the output.
    #[arg(long, default_value = "")]
    label: String,
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

struct Target {
    args: Args,
    client: HttpClient,
    host: String,
}

fn enc(s: &str) -> String {
    sigv4::uri_encode(s.as_bytes(), false)
}

impl Target {
    fn new(args: Args) -> Target {
        let host = args.endpoint.trim_start_matches("http://").trim_end_matches('/').to_string();
        let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(64).build_http();
        Target { args, client, host }
    }

    /// Sends one signed form POST; returns (status, body).
    async fn call(&self, params: &[(&str, String)]) -> Result<(u16, String), String> {
        let mut body = String::from("Version=2016-11-15");
        for (k, v) in params {
            body.push('&');
            body.push_str(&enc(k));
            body.push('=');
            body.push_str(&enc(v));
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let date = amz_date(now);
        let headers = vec![
            ("content-type".to_string(), "application/x-www-form-urlencoded; charset=utf-8".to_string()),
            ("host".to_string(), self.host.clone()),
            ("x-amz-date".to_string(), date.clone()),
        ];
        let signed = SignedRequest { method: "POST", path: "/", query: "", headers: &headers, body: body.as_bytes() };
        let auth = sigv4::sign_headers(&signed, &self.args.access_key, &self.args.secret_key, &self.args.region, "ec2", &date)
            .map_err(|e| e.to_string())?;
        let mut req = hyper::Request::builder().method("POST").uri(format!("{}/", self.args.endpoint.trim_end_matches('/')));
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req.header("authorization", auth).body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?;
        let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }

    async fn ok(&self, params: &[(&str, String)]) -> Result<String, String> {
        let (status, body) = self.call(params).await?;
        if status != 200 {
            return Err(format!("{:?} -> {status}: {}", params.first(), &body[..body.len().min(400)]));
        }
        Ok(body)
    }
}

/// Every `<tag>value</tag>` in a document, in order.
fn all(body: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        if let Some(j) = rest.find(&close) {
            out.push(rest[..j].to_string());
            rest = &rest[j..];
        }
    }
    out
}

async fn image(t: &Target) -> Result<String, String> {
    let body = t.ok(&[("Action", "DescribeImages".into())]).await?;
    all(&body, "imageId").into_iter().next().ok_or_else(|| "no image to launch".to_string())
}

async fn instance_ids(t: &Target) -> Result<Vec<String>, String> {
    let body = t
        .ok(&[("Action", "DescribeInstances".into()), ("Filter.1.Name", "instance-state-name".into()), ("Filter.1.Value.1", "pending".into()), ("Filter.1.Value.2", "running".into())])
        .await?;
    Ok(all(&body, "instanceId"))
}

/// Launches `n` instances in batches; every other batch is tagged Name=web-N,
/// the others Name=db-N, so a tag filter matches about half.
async fn setup(t: &Target, n: usize) -> Result<(), String> {
    let ami = image(t).await?;
    let mut made = 0;
    let mut batch = 0;
    while made < n {
        let k = (n - made).min(50);
        let name = if batch % 2 == 0 { format!("web-{batch}") } else { format!("db-{batch}") };
        t.ok(&[
            ("Action", "RunInstances".into()),
            ("ImageId", ami.clone()),
            ("InstanceType", "t2.micro".into()),
            ("MinCount", k.to_string()),
            ("MaxCount", k.to_string()),
            ("TagSpecification.1.ResourceType", "instance".into()),
            ("TagSpecification.1.Tag.1.Key", "Name".into()),
            ("TagSpecification.1.Tag.1.Value", name),
        ])
        .await?;
        made += k;
        batch += 1;
    }
    let have = instance_ids(t).await?.len();
    println!("{{\"setup\": true, \"label\": \"{}\", \"instances\": {have}}}", t.args.label);
    Ok(())
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn run_scenario(t: Arc<Target>) -> Result<(), String> {
    let scenario = t.args.scenario.clone();
    let ami = image(&t).await?;
    let ids = Arc::new(if scenario == "create-tags" { instance_ids(&t).await? } else { vec![] });
    if scenario == "create-tags" && ids.is_empty() {
        return Err("create-tags needs instances (run setup first)".into());
    }
    let deadline = Instant::now() + Duration::from_secs_f64(t.args.seconds);
    let issued = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..t.args.concurrency {
        let t = t.clone();
        let ami = ami.clone();
        let ids = ids.clone();
        let issued = issued.clone();
        let errors = errors.clone();
        let scenario = scenario.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = w;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < t.args.max_requests {
                let params: Vec<(&str, String)> = match scenario.as_str() {
                    "describe" => vec![("Action", "DescribeInstances".into())],
                    "describe-tag" => vec![
                        ("Action", "DescribeInstances".into()),
                        ("Filter.1.Name", "tag:Name".into()),
                        ("Filter.1.Value.1", "web-*".into()),
                    ],
                    "run" => vec![
                        ("Action", "RunInstances".into()),
                        ("ImageId", ami.clone()),
                        ("InstanceType", "t2.micro".into()),
                        ("MinCount", "1".into()),
                        ("MaxCount", "1".into()),
                    ],
                    "create-tags" => vec![
                        ("Action", "CreateTags".into()),
                        ("ResourceId.1", ids[i % ids.len()].clone()),
                        ("Tag.1.Key", format!("k{}", i % 7)),
                        ("Tag.1.Value", format!("v{i}")),
                    ],
                    other => {
                        eprintln!("unknown scenario {other}");
                        return lat;
                    }
                };
                let t0 = Instant::now();
                match t.call(&params).await {
                    Ok((200, _)) => lat.push(t0.elapsed().as_secs_f64() * 1000.0),
                    Ok((s, b)) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("error {s}: {}", &b[..b.len().min(300)]);
                        }
                    }
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("error: {e}");
                        }
                    }
                }
                i += t.args.concurrency;
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for w in workers {
        lat.extend(w.await.map_err(|e| e.to_string())?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    println!(
        "{{\"label\": \"{}\", \"scenario\": \"{}\", \"concurrency\": {}, \"requests\": {}, \"errors\": {}, \"seconds\": {:.3}, \"throughput\": {:.2}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}, \"max_ms\": {:.3}}}",
        t.args.label,
        scenario,
        t.args.concurrency,
        lat.len(),
        errors.load(Ordering::Relaxed),
        elapsed,
        lat.len() as f64 / elapsed,
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0)
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let t = Arc::new(Target::new(args));
    let result = rt.block_on(async {
        if t.args.scenario == "setup" {
            setup(&t, t.args.instances).await
        } else {
            run_scenario(t.clone()).await
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
