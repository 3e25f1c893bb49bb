//! The QEMU runtime: one QEMU microVM per running instance.
//!
//! Each instance has an actor task that owns its VM and carries out the
//! control plane's requests in order (start, stop, reboot, destroy), watches
//! the QEMU process, and reports what happens. QEMU runs as an unprivileged
//! user with `-sandbox` and cgroup limits, gets its tap device as a file
//! descriptor, boots the image's kernel directly (`microvm`, virtio-mmio), and
//! writes its serial console to a socket Strato reads into a bounded buffer.
//! QEMU processes outlive a restart of Strato, which finds them again through
//! the record each instance keeps in its directory.
//!
//! Layout of `<state>/<instance-id>/`: `vm.json` (the record), `root.qcow2`
//! (copy-on-write over the image), `vol-….qcow2` (data volumes), `qmp.sock`,
//! `console.sock`, `console.log` (bounded), `qemu.log`.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strato_core::ids::{InstanceId, VolumeId};
use strato_core::lifecycle::Observation;
use strato_core::runtime::{EventSink, InstanceSpec, MetadataEndpoint, Runtime, RuntimeError};
use strato_images::ImageStore;
use strato_net::{DataPlane, PortSpec};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::accel::Accel;
use crate::qmp;

/// The most console output kept per instance (GetConsoleOutput returns the
/// last 64 KiB, as EC2 does).
pub const CONSOLE_KEEP: usize = 64 * 1024;
const CONSOLE_FILE_MAX: u64 = 1024 * 1024;

#[derive(Clone, Debug)]
pub struct QemuConfig {
    pub state_dir: PathBuf,
    pub volumes_dir: PathBuf,
    pub qemu_binary: String,
    pub accel: Accel,
    /// `(uid, gid)` QEMU runs as; `None` keeps Strato's own (not advised).
    pub run_as: Option<(u32, u32)>,
    pub stop_timeout: Duration,
    /// A guest that prints nothing on its console this long is reset.
    pub boot_watchdog: Duration,
    pub cpu_overcommit: f64,
    pub memory_overcommit: f64,
}

/// What an instance's directory records about its VM.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct VmRecord {
    instance: String,
    pid: Option<u32>,
    vcpus: u32,
    memory_mib: u64,
    vpc: String,
    private_ip: Ipv4Addr,
    gateway: Ipv4Addr,
    metadata_port: u16,
}

impl VmRecord {
    fn port(&self) -> PortSpec {
        PortSpec {
            instance: self.instance.clone(),
            vpc: self.vpc.clone(),
            private_ip: self.private_ip,
            gateway: self.gateway,
            metadata_port: self.metadata_port,
        }
    }
}

enum Command {
    Start(Box<InstanceSpec>),
    Stop { force: bool },
    Reboot,
    Destroy { keep: Vec<VolumeId> },
}

/// What the rest of the runtime may see of an instance without asking its actor.
#[derive(Clone, Debug, Default)]
struct Shared {
    running: bool,
    vcpus: u32,
    memory_mib: u64,
}

struct Actor {
    tx: mpsc::UnboundedSender<Command>,
    shared: Arc<Mutex<Shared>>,
    console: Arc<Mutex<Vec<u8>>>,
}

struct Inner {
    cfg: QemuConfig,
    images: ImageStore,
    net: Arc<DataPlane>,
    metadata: Arc<dyn MetadataEndpoint>,
    sink: Arc<dyn EventSink>,
    actors: Mutex<HashMap<String, Actor>>,
    ports: Mutex<HashSet<u16>>,
    tsc_khz: Option<u64>,
    host_cpus: u32,
    host_memory_mib: u64,
}

pub struct QemuRuntime {
    inner: Arc<Inner>,
    handle: tokio::runtime::Handle,
}

fn host_memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map(|kb| kb / 1024)
        .unwrap_or(1024)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl QemuRuntime {
    /// Must be called within a Tokio runtime.
    pub fn new(
        cfg: QemuConfig,
        images: ImageStore,
        net: Arc<DataPlane>,
        metadata: Arc<dyn MetadataEndpoint>,
        sink: Arc<dyn EventSink>,
    ) -> Result<QemuRuntime, String> {
        let handle = tokio::runtime::Handle::try_current().map_err(|e| format!("the QEMU runtime needs Tokio: {e}"))?;
        std::fs::create_dir_all(&cfg.state_dir).map_err(|e| format!("creating {}: {e}", cfg.state_dir.display()))?;
        std::fs::create_dir_all(&cfg.volumes_dir).map_err(|e| format!("creating {}: {e}", cfg.volumes_dir.display()))?;
        let host_cpus = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
        let inner = Inner {
            tsc_khz: crate::accel::host_tsc_khz(),
            cfg,
            images,
            net,
            metadata,
            sink,
            actors: Mutex::new(HashMap::new()),
            ports: Mutex::new(HashSet::new()),
            host_cpus,
            host_memory_mib: host_memory_mib(),
        };
        Ok(QemuRuntime { inner: Arc::new(inner), handle })
    }

    fn send(&self, id: &InstanceId, cmd: Command) -> Result<(), RuntimeError> {
        let tx = {
            let mut actors = lock(&self.inner.actors);
            let actor = actors.entry(id.to_string()).or_insert_with(|| spawn_actor(&self.inner, &self.handle, id.as_str(), None));
            actor.tx.clone()
        };
        tx.send(cmd).map_err(|_| RuntimeError::Failed(format!("the actor of {id} has ended")))
    }

    pub fn accel(&self) -> Accel {
        self.inner.cfg.accel
    }

    /// Capacity this host offers: (vCPUs, MiB) after overcommit.
    pub fn capacity(&self) -> (u32, u64) {
        let c = &self.inner.cfg;
        (
            (self.inner.host_cpus as f64 * c.cpu_overcommit).floor() as u32,
            (self.inner.host_memory_mib as f64 * c.memory_overcommit).floor() as u64,
        )
    }
}

impl Runtime for QemuRuntime {
    fn name(&self) -> String {
        format!("qemu-{}", self.inner.cfg.accel)
    }

    fn admit(&self, demands: &[(u32, u64)]) -> Result<(), RuntimeError> {
        let (cpus, mem) = self.capacity();
        let (mut used_cpu, mut used_mem) = (0u32, 0u64);
        for a in lock(&self.inner.actors).values() {
            let s = lock(&a.shared);
            if s.running {
                used_cpu += s.vcpus;
                used_mem += s.memory_mib;
            }
        }
        let want_cpu: u32 = demands.iter().map(|d| d.0).sum();
        let want_mem: u64 = demands.iter().map(|d| d.1).sum();
        if used_cpu + want_cpu > cpus || used_mem + want_mem > mem {
            return Err(RuntimeError::Capacity(format!(
                "We currently do not have sufficient capacity in the Availability Zone you requested: this host runs {used_cpu} of {cpus} vCPUs and {used_mem} of {mem} MiB, and the request needs {want_cpu} vCPUs and {want_mem} MiB."
            )));
        }
        Ok(())
    }

    fn start(&self, spec: &InstanceSpec) -> Result<(), RuntimeError> {
        self.send(&spec.id, Command::Start(Box::new(spec.clone())))
    }

    fn stop(&self, id: &InstanceId, force: bool) -> Result<(), RuntimeError> {
        self.send(id, Command::Stop { force })
    }

    fn reboot(&self, id: &InstanceId) -> Result<(), RuntimeError> {
        self.send(id, Command::Reboot)
    }

    fn destroy(&self, id: &InstanceId, keep: &[VolumeId]) -> Result<(), RuntimeError> {
        self.send(id, Command::Destroy { keep: keep.to_vec() })
    }

    fn console_output(&self, id: &InstanceId) -> Result<Vec<u8>, RuntimeError> {
        if let Some(a) = lock(&self.inner.actors).get(id.as_str()) {
            return Ok(lock(&a.console).clone());
        }
        Ok(read_console_tail(&self.inner.cfg.state_dir.join(id.as_str())))
    }

    fn observe(&self, id: &InstanceId) -> Option<Observation> {
        if let Some(a) = lock(&self.inner.actors).get(id.as_str()) {
            if lock(&a.shared).running {
                return Some(Observation::Running);
            }
        }
        let dir = self.inner.cfg.state_dir.join(id.as_str());
        if !dir.exists() {
            return None;
        }
        match read_record(&dir).and_then(|r| r.pid) {
            Some(pid) if qemu_alive(pid, id.as_str()) => Some(Observation::Running),
            _ => Some(Observation::Stopped),
        }
    }

    fn set_vpc_network(&self, vpc: &strato_core::ids::VpcId, ports: &[strato_core::runtime::PortPolicy]) -> Result<(), RuntimeError> {
        self.inner.net.set_vpc_network(vpc.as_str(), ports).map_err(|e| RuntimeError::Failed(e.to_string()))
    }

    fn has_data_plane(&self) -> bool {
        true
    }

    fn image_ready(&self, key: &str) -> bool {
        self.inner.images.get(key).is_some()
    }

    fn create_image(&self, instance: &InstanceId, source_key: &str, new_key: &str, done: strato_core::runtime::ImageDone) {
        let inner = self.inner.clone();
        let disk = inner.cfg.state_dir.join(instance.as_str()).join("root.qcow2");
        let (source_key, new_key) = (source_key.to_string(), new_key.to_string());
        self.handle.spawn_blocking(move || {
            let result = match inner.images.get(&source_key) {
                Some(from) => inner.images.derive(&new_key, &from, &disk).and_then(|a| a.disk_size()).map(Some).map_err(|e| e.to_string()),
                None => Err(format!("the image '{source_key}' is not on this host")),
            };
            done(result);
        });
    }

    fn register_image(&self, location: &str, new_key: &str, done: strato_core::runtime::ImageDone) -> Result<(), RuntimeError> {
        let import_dir = self.import_dir();
        let _ = std::fs::create_dir_all(&import_dir);
        let path = import_path(&import_dir, location)?;
        let inner = self.inner.clone();
        let new_key = new_key.to_string();
        self.handle.spawn_blocking(move || {
            done(inner.images.import(&new_key, &path).and_then(|a| a.disk_size()).map(Some).map_err(|e| e.to_string()));
        });
        Ok(())
    }

    fn adopt(&self, known: &[InstanceId]) {
        let known: HashSet<String> = known.iter().map(|i| i.to_string()).collect();
        let mut live_instances = HashSet::new();
        let mut live_vpcs = HashSet::new();
        let entries = std::fs::read_dir(&self.inner.cfg.state_dir).map(|d| d.filter_map(|e| e.ok()).collect::<Vec<_>>()).unwrap_or_default();
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("i-") {
                continue;
            }
            let dir = e.path();
            let record = read_record(&dir);
            let alive = record.as_ref().and_then(|r| r.pid).filter(|p| qemu_alive(*p, &name));
            if !known.contains(&name) {
                tracing::warn!(instance = %name, "removing what is left of an instance the control plane does not know");
                if let Some(pid) = alive {
                    let _ = strato_net::sys::kill(pid, 9);
                }
                if let Some(r) = &record {
                    let _ = self.inner.net.detach(&r.instance, &r.vpc);
                }
                remove_cgroups(&name);
                let _ = std::fs::remove_dir_all(&dir);
                continue;
            }
            if let (Some(pid), Some(r)) = (alive, record) {
                tracing::info!(instance = %name, pid, "found a running VM again");
                live_instances.insert(name.clone());
                live_vpcs.insert(r.vpc.clone());
                lock(&self.inner.ports).insert(r.metadata_port);
                let actor = spawn_actor(&self.inner, &self.handle, &name, Some((pid, r)));
                lock(&self.inner.actors).insert(name, actor);
            }
        }
        if let Err(e) = self.inner.net.sweep(&live_instances, &live_vpcs) {
            tracing::warn!(error = %e, "sweeping the data plane failed");
        }
    }
}

fn read_record(dir: &Path) -> Option<VmRecord> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("vm.json")).ok()?).ok()
}

fn write_record(dir: &Path, r: &VmRecord) {
    if let Ok(text) = serde_json::to_string(r) {
        let tmp = dir.join("vm.json.tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(tmp, dir.join("vm.json"));
        }
    }
}

/// Is `pid` a live QEMU of this instance (and not some recycled pid)?
fn qemu_alive(pid: u32, instance: &str) -> bool {
    if !strato_net::sys::alive(pid) {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(&format!("strato-{instance}")))
        .unwrap_or(false)
}

fn read_console_tail(dir: &Path) -> Vec<u8> {
    let data = std::fs::read(dir.join("console.log")).unwrap_or_default();
    let start = data.len().saturating_sub(CONSOLE_KEEP);
    data[start..].to_vec()
}

fn cgroup_dirs(instance: &str) -> [PathBuf; 2] {
    [
        PathBuf::from(format!("/sys/fs/cgroup/memory/strato/{instance}")),
        PathBuf::from(format!("/sys/fs/cgroup/pids/strato/{instance}")),
    ]
}

/// Caps the VM's memory (guest RAM plus room for QEMU itself) and its
/// number of tasks, on cgroup v1 controllers where the host has them.
fn apply_cgroups(instance: &str, pid: u32, memory_mib: u64) {
    let [mem, pids] = cgroup_dirs(instance);
    let limit = (memory_mib + 256) * 1024 * 1024;
    let try_set = |dir: &Path, file: &str, value: String| -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(file), value)?;
        std::fs::write(dir.join("cgroup.procs"), pid.to_string())
    };
    if let Err(e) = try_set(&mem, "memory.limit_in_bytes", limit.to_string()) {
        tracing::warn!(instance, error = %e, "could not put the VM in a memory cgroup");
    }
    if let Err(e) = try_set(&pids, "pids.max", "128".to_string()) {
        tracing::warn!(instance, error = %e, "could not put the VM in a pids cgroup");
    }
}

fn remove_cgroups(instance: &str) {
    for d in cgroup_dirs(instance) {
        let _ = std::fs::remove_dir(d);
    }
}

fn spawn_actor(inner: &Arc<Inner>, handle: &tokio::runtime::Handle, instance: &str, adopted: Option<(u32, VmRecord)>) -> Actor {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Mutex::new(Shared::default()));
    let dir = inner.cfg.state_dir.join(instance);
    let console = Arc::new(Mutex::new(read_console_tail(&dir)));
    let vm = Vm {
        inner: inner.clone(),
        id: InstanceId::from_trusted(instance.to_string()),
        dir,
        shared: shared.clone(),
        console: console.clone(),
        proc: None,
        record: None,
        reader: None,
    };
    handle.spawn(vm.run(rx, adopted));
    Actor { tx, shared, console }
}

/// The QEMU process of a VM: our child, or one found again after a restart.
enum Proc {
    Child(tokio::process::Child),
    Adopted(u32),
}

impl Proc {
    fn pid(&self) -> Option<u32> {
        match self {
            Proc::Child(c) => c.id(),
            Proc::Adopted(p) => Some(*p),
        }
    }

    async fn wait(&mut self) {
        match self {
            Proc::Child(c) => {
                let _ = c.wait().await;
            }
            Proc::Adopted(pid) => {
                while strato_net::sys::alive(*pid) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

struct Vm {
    inner: Arc<Inner>,
    id: InstanceId,
    dir: PathBuf,
    shared: Arc<Mutex<Shared>>,
    console: Arc<Mutex<Vec<u8>>>,
    proc: Option<Proc>,
    record: Option<VmRecord>,
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl Vm {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>, adopted: Option<(u32, VmRecord)>) {
        if let Some((pid, record)) = adopted {
            if let Err(e) = self.readopt(pid, record).await {
                tracing::warn!(instance = %self.id, error = %e, "could not take the VM back; stopping it");
                self.kill().await;
            }
        }
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut boot_check: Option<tokio::time::Instant> = None;
        let mut resets = 0;
        loop {
            let running = self.proc.is_some();
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    match cmd {
                        Command::Start(spec) => {
                            if running {
                                self.report(Observation::Running);
                                continue;
                            }
                            match self.boot(&spec).await {
                                Ok(()) => {
                                    deadline = None;
                                    resets = 0;
                                    boot_check = Some(tokio::time::Instant::now() + self.inner.cfg.boot_watchdog);
                                    self.report(Observation::Running);
                                }
                                Err(e) => {
                                    tracing::warn!(instance = %self.id, error = %e, "could not start the VM");
                                    self.teardown_network();
                                    self.report(Observation::Failed(e));
                                }
                            }
                        }
                        Command::Stop { force } => {
                            if !running {
                                self.report(Observation::Stopped);
                                continue;
                            }
                            if force {
                                self.signal(9);
                            } else {
                                let qmp = self.dir.join("qmp.sock");
                                if let Err(e) = qmp::execute(&qmp, "system_powerdown").await {
                                    tracing::warn!(instance = %self.id, error = %e, "graceful power-off failed; forcing");
                                    self.signal(9);
                                }
                                deadline = Some(tokio::time::Instant::now() + self.inner.cfg.stop_timeout);
                            }
                        }
                        Command::Reboot => {
                            if running {
                                if let Err(e) = qmp::execute(&self.dir.join("qmp.sock"), "system_reset").await {
                                    tracing::warn!(instance = %self.id, error = %e, "reset failed");
                                }
                            }
                        }
                        Command::Destroy { keep } => {
                            self.kill().await;
                            self.teardown_network();
                            self.remove_files(&keep);
                            lock(&self.inner.actors).remove(self.id.as_str());
                            self.report(Observation::Gone);
                            return;
                        }
                    }
                }
                _ = wait_proc(&mut self.proc), if running => {
                    self.proc = None;
                    tracing::info!(instance = %self.id, "QEMU exited");
                    self.after_exit();
                    deadline = None;
                    boot_check = None;
                    // Whether asked for or not (a guest power-off), the VM is
                    // off; the lifecycle decides what that means.
                    self.report(Observation::Stopped);
                }
                _ = sleep_until(deadline), if running && deadline.is_some() => {
                    tracing::warn!(instance = %self.id, "the guest did not power off in time; forcing");
                    self.signal(9);
                    deadline = None;
                }
                _ = sleep_until(boot_check), if running && boot_check.is_some() => {
                    boot_check = None;
                    if lock(&self.console).is_empty() {
                        resets += 1;
                        tracing::warn!(instance = %self.id, attempt = resets, "the guest printed nothing while booting; resetting it");
                        let _ = qmp::execute(&self.dir.join("qmp.sock"), "system_reset").await;
                        if resets < 3 {
                            boot_check = Some(tokio::time::Instant::now() + self.inner.cfg.boot_watchdog);
                        }
                    }
                }
            }
        }
    }

    fn report(&self, o: Observation) {
        self.inner.sink.report(&self.id, o);
    }

    fn signal(&self, sig: i32) {
        if let Some(pid) = self.proc.as_ref().and_then(|p| p.pid()) {
            let _ = strato_net::sys::kill(pid, sig);
        }
    }

    async fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            if let Some(pid) = p.pid() {
                let _ = strato_net::sys::kill(pid, 9);
            }
            p.wait().await;
        }
        self.after_exit();
    }

    /// What is done whenever the VM has stopped: it no longer runs, its
    /// console reader and network go, its cgroups are removed.
    fn after_exit(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
        {
            let mut s = lock(&self.shared);
            s.running = false;
        }
        if let Some(r) = self.record.as_mut() {
            r.pid = None;
            write_record(&self.dir, r);
        }
        self.teardown_network();
        remove_cgroups(self.id.as_str());
    }

    fn teardown_network(&mut self) {
        self.inner.metadata.stop(&self.id);
        if let Some(r) = &self.record {
            if let Err(e) = self.inner.net.detach(&r.instance, &r.vpc) {
                tracing::warn!(instance = %self.id, error = %e, "could not remove the instance's network");
            }
            lock(&self.inner.ports).remove(&r.metadata_port);
        }
    }

    fn remove_files(&mut self, keep: &[VolumeId]) {
        for v in keep {
            let from = self.dir.join(format!("{v}.qcow2"));
            if from.exists() {
                let _ = std::fs::rename(&from, self.inner.cfg.volumes_dir.join(format!("{v}.qcow2")));
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(instance = %self.id, error = %e, "could not remove the instance's files");
            }
        }
    }

    fn metadata_port(&self) -> Result<u16, String> {
        if let Some(p) = read_record(&self.dir).map(|r| r.metadata_port) {
            lock(&self.inner.ports).insert(p);
            return Ok(p);
        }
        let mut ports = lock(&self.inner.ports);
        let (lo, hi) = strato_net::METADATA_PORTS;
        let p = (lo..=hi).find(|p| !ports.contains(p)).ok_or("no free metadata port")?;
        ports.insert(p);
        Ok(p)
    }

    async fn readopt(&mut self, pid: u32, record: VmRecord) -> Result<(), String> {
        let port = record.port();
        self.inner.net.attach(&port).map_err(|e| e.to_string())?;
        let listener = self.inner.net.metadata_listener(&port).map_err(|e| e.to_string())?;
        self.inner.metadata.serve(&self.id, listener);
        {
            let mut s = lock(&self.shared);
            s.running = true;
            s.vcpus = record.vcpus;
            s.memory_mib = record.memory_mib;
        }
        self.proc = Some(Proc::Adopted(pid));
        self.record = Some(record);
        self.reader = Some(tokio::spawn(console_reader(self.dir.clone(), self.console.clone())));
        Ok(())
    }

    /// Makes the disks if needed, attaches the network, and starts QEMU.
    async fn boot(&mut self, spec: &InstanceSpec) -> Result<(), String> {
        let key = spec.image_builtin.clone().ok_or("the image has no bootable files on this host")?;
        let image = self
            .inner
            .images
            .get(&key)
            .ok_or_else(|| format!("the image '{key}' is not built on this host (run `strato image build {key}`)"))?;
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
        let owner = self.inner.cfg.run_as;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&self.dir, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", self.dir.display()))?;
        }
        // Disks: a copy-on-write overlay over the image for the root volume,
        // empty ones for data volumes; both kept across stop and start.
        let mut drives = Vec::new();
        for v in &spec.volumes {
            let file = self.dir.join(if v.root { "root.qcow2".to_string() } else { format!("{}.qcow2", v.id) });
            if !file.exists() {
                let size = format!("{}G", v.size_gib);
                let f = file.to_string_lossy().into_owned();
                let base = image.disk().to_string_lossy().into_owned();
                let fmt = image.manifest.disk_format.clone();
                if v.root {
                    // The overlay starts as large as the image's disk (a
                    // smaller size would cut the filesystem off) and grows
                    // below to the VolumeSize asked for.
                    run_tool("qemu-img", &["create", "-q", "-f", "qcow2", "-F", &fmt, "-b", &base, &f]).await?;
                } else {
                    run_tool("qemu-img", &["create", "-q", "-f", "qcow2", &f, &size]).await?;
                }
            }
            if v.root {
                // Only ever grows: a smaller VolumeSize leaves the disk as it is.
                grow_disk(&file, u64::from(v.size_gib) << 30).await?;
            }
            if let Some((uid, gid)) = owner {
                let _ = std::os::unix::fs::chown(&file, Some(uid), Some(gid));
            }
            drives.push(file);
        }
        for stale in ["qmp.sock", "console.sock"] {
            let _ = std::fs::remove_file(self.dir.join(stale));
        }

        let record = VmRecord {
            instance: spec.id.to_string(),
            pid: None,
            vcpus: spec.vcpus,
            memory_mib: spec.memory_mib,
            vpc: spec.network.vpc_id.to_string(),
            private_ip: spec.network.private_ip,
            gateway: spec.network.gateway,
            metadata_port: self.metadata_port()?,
        };
        self.record = Some(record.clone());
        let port = record.port();
        self.inner.net.attach(&port).map_err(|e| e.to_string())?;
        let tap = self.inner.net.open_tap(&port).map_err(|e| e.to_string())?;
        let listener = self.inner.net.metadata_listener(&port).map_err(|e| e.to_string())?;
        self.inner.metadata.serve(&self.id, listener);

        let mut cmdline = format!(
            // loglevel=6 shows the kernel's notices (its banner, command line,
            // warnings) on the console without the many info lines.
            "console=ttyS0 {} panic=-1 loglevel=6 cryptomgr.notests strato.ip={}/{} strato.gw={}",
            image.manifest.cmdline, spec.network.private_ip, spec.network.prefix_len, spec.network.gateway
        );
        // cloud-init reads its network configuration from the command line
        // (`network-config=`, base64 YAML), so images with cloud-init come up
        // with the instance's address without a DHCP server.
        cmdline.push_str(&format!(" network-config={}", network_config(spec)));
        if self.inner.cfg.accel == Accel::Tcg {
            // The emulated PIT is too jittery to calibrate the TSC against.
            if let Some(khz) = self.inner.tsc_khz {
                cmdline.push_str(&format!(" tsc_early_khz={khz} tsc=reliable"));
            }
        }
        let mut args: Vec<String> = vec![
            "-name".into(),
            format!("strato-{},debug-threads=on", spec.id),
            "-M".into(),
            "microvm,x-option-roms=off,rtc=on".into(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-nographic".into(),
            "-smp".into(),
            spec.vcpus.max(1).to_string(),
            "-m".into(),
            spec.memory_mib.to_string(),
            "-kernel".into(),
            image.kernel().to_string_lossy().into_owned(),
            "-initrd".into(),
            image.initrd().to_string_lossy().into_owned(),
            "-append".into(),
            cmdline,
        ];
        match self.inner.cfg.accel {
            Accel::Kvm => args.extend(["-accel".into(), "kvm".into(), "-cpu".into(), "host".into()]),
            Accel::Tcg => args.extend(["-accel".into(), "tcg,tb-size=64".into(), "-cpu".into(), "max".into()]),
        }
        for (i, d) in drives.iter().enumerate() {
            args.push("-drive".into());
            args.push(format!("id=d{i},file={},format=qcow2,if=none,discard=unmap", d.to_string_lossy()));
            args.push("-device".into());
            args.push(format!("virtio-blk-device,drive=d{i}"));
        }
        args.extend([
            "-netdev".into(),
            "tap,id=n0,fd=3".into(),
            "-device".into(),
            format!("virtio-net-device,netdev=n0,mac={}", spec.network.mac),
            "-chardev".into(),
            format!("socket,id=con,path={},server=on,wait=on", self.dir.join("console.sock").to_string_lossy()),
            "-serial".into(),
            "chardev:con".into(),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", self.dir.join("qmp.sock").to_string_lossy()),
            "-sandbox".into(),
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny".into(),
        ]);
        let log = std::fs::File::create(self.dir.join("qemu.log")).map_err(|e| format!("qemu.log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = std::process::Command::new(&self.inner.cfg.qemu_binary);
        cmd.args(&args).current_dir(&self.dir).stdin(std::process::Stdio::null()).stdout(log).stderr(log2);
        if let Some((uid, gid)) = owner {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        strato_net::sys::pass_fd(&mut cmd, tap.as_raw_fd(), 3);
        let mut child = tokio::process::Command::from(cmd)
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.inner.cfg.qemu_binary))?;
        drop(tap);
        let pid = child.id().ok_or("QEMU exited at once")?;
        apply_cgroups(spec.id.as_str(), pid, spec.memory_mib);
        {
            let mut r = record;
            r.pid = Some(pid);
            write_record(&self.dir, &r);
            self.record = Some(r);
        }
        // QEMU waits for the console to be connected before it runs the guest,
        // so not one byte of the boot is lost.
        lock(&self.console).clear();
        let console_path = self.dir.join("console.sock");
        let mut connected = None;
        for _ in 0..200 {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join("qemu.log")).unwrap_or_default();
                return Err(format!("QEMU exited ({status}): {}", log.trim()));
            }
            if let Ok(s) = tokio::net::UnixStream::connect(&console_path).await {
                connected = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let Some(stream) = connected else {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err("QEMU did not open its console".into());
        };
        let _ = std::fs::write(self.dir.join("console.log"), b"");
        self.reader = Some(tokio::spawn(console_pump(stream, self.dir.join("console.log"), self.console.clone())));
        {
            let mut s = lock(&self.shared);
            s.running = true;
            s.vcpus = spec.vcpus;
            s.memory_mib = spec.memory_mib;
        }
        self.proc = Some(Proc::Child(child));
        Ok(())
    }
}

/// cloud-init network configuration (version 1) for the primary interface.
fn network_config(spec: &InstanceSpec) -> String {
    use base64::Engine;
    let n = &spec.network;
    let yaml = format!(
        "version: 1\nconfig:\n- type: physical\n  name: eth0\n  mac_address: \"{}\"\n  subnets:\n  - type: static\n    address: {}/{}\n    gateway: {}\n",
        n.mac, n.private_ip, n.prefix_len, n.gateway
    );
    base64::engine::general_purpose::STANDARD.encode(yaml)
}

async fn wait_proc(p: &mut Option<Proc>) {
    match p {
        Some(p) => p.wait().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn run_tool(program: &str, args: &[&str]) -> Result<(), String> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{program} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

/// Grows a qcow2 disk to `bytes` if it is smaller.
async fn grow_disk(file: &Path, bytes: u64) -> Result<(), String> {
    let f = file.to_path_buf();
    let now = tokio::task::spawn_blocking(move || strato_images::virtual_size(&f)).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    if now < bytes {
        run_tool("qemu-img", &["resize", "-q", &file.to_string_lossy(), &bytes.to_string()]).await?;
    }
    Ok(())
}

/// Reconnects to a running VM's console (after a restart of Strato).
async fn console_reader(dir: PathBuf, ring: Arc<Mutex<Vec<u8>>>) {
    loop {
        if let Ok(s) = tokio::net::UnixStream::connect(dir.join("console.sock")).await {
            console_pump(s, dir.join("console.log"), ring.clone()).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Copies console output into the bounded buffer and the bounded file.
async fn console_pump(mut stream: tokio::net::UnixStream, file: PathBuf, ring: Arc<Mutex<Vec<u8>>>) {
    use std::io::Write;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        {
            let mut r = lock(&ring);
            r.extend_from_slice(&buf[..n]);
            if r.len() > CONSOLE_KEEP {
                let cut = r.len() - CONSOLE_KEEP;
                r.drain(..cut);
            }
        }
        let too_big = std::fs::metadata(&file).map(|m| m.len() > CONSOLE_FILE_MAX).unwrap_or(false);
        if too_big {
            let keep = lock(&ring).clone();
            let _ = std::fs::write(&file, keep);
        } else if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&file) {
            let _ = f.write_all(&buf[..n]);
        }
    }
}

impl QemuRuntime {
    /// Where operators put disk files for RegisterImage.
    pub fn import_dir(&self) -> PathBuf {
        self.inner.cfg.state_dir.parent().map(|p| p.join("import")).unwrap_or_else(|| PathBuf::from("import"))
    }
}

/// Resolves an ImageLocation inside the import directory, refusing anything
/// that would reach outside it.
fn import_path(import_dir: &Path, location: &str) -> Result<PathBuf, RuntimeError> {
    let name = location.strip_prefix("file://").unwrap_or(location);
    let candidate = if Path::new(name).is_absolute() { PathBuf::from(name) } else { import_dir.join(name) };
    let resolved = candidate
        .canonicalize()
        .map_err(|_| RuntimeError::Failed(format!("ImageLocation '{location}' is not a file in the host's import directory {}", import_dir.display())))?;
    let dir = import_dir.canonicalize().map_err(|_| RuntimeError::Failed(format!("the import directory {} does not exist", import_dir.display())))?;
    if !resolved.starts_with(&dir) || !resolved.is_file() {
        return Err(RuntimeError::Failed(format!(
            "ImageLocation '{location}' must name a disk file inside the host's import directory {}",
            import_dir.display()
        )));
    }
    Ok(resolved)
}
