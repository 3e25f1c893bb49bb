//! A runtime that runs nothing: each instance is a record in memory whose
//! state changes are reported after a configurable delay, with a console log
//! that says plainly that it is simulated. It exercises the control plane's
//! lifecycle (asynchronous reports, stale reports, restarts) without VMs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strato_core::ids::{InstanceId, VolumeId};
use strato_core::lifecycle::Observation;
use strato_core::runtime::{EventSink, InstanceSpec, Runtime, RuntimeError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Power {
    Booting,
    Running,
    Stopping,
    Stopped,
}

struct Vm {
    power: Power,
    /// Bumped by every request, so a delayed report can tell it is stale.
    epoch: u64,
    console: Vec<u8>,
}

pub struct SimulatedRuntime {
    sink: Arc<dyn EventSink>,
    delay: Duration,
    vms: Arc<Mutex<HashMap<InstanceId, Vm>>>,
    handle: tokio::runtime::Handle,
}

const CONSOLE_LIMIT: usize = 64 * 1024;

impl SimulatedRuntime {
    /// Must be called from within a Tokio runtime; delayed reports run on it.
    pub fn new(sink: Arc<dyn EventSink>, delay: Duration) -> Result<SimulatedRuntime, String> {
        let handle = tokio::runtime::Handle::try_current().map_err(|e| format!("the simulated runtime needs Tokio: {e}"))?;
        Ok(SimulatedRuntime { sink, delay, vms: Arc::new(Mutex::new(HashMap::new())), handle })
    }

    fn with_vm<T>(&self, id: &InstanceId, f: impl FnOnce(&mut Vm) -> T) -> Result<T, RuntimeError> {
        let mut vms = self.vms.lock().map_err(|_| RuntimeError::Failed("simulated runtime poisoned".into()))?;
        let vm = vms.get_mut(id).ok_or_else(|| RuntimeError::Failed(format!("{id} is not known to the simulated runtime")))?;
        Ok(f(vm))
    }

    /// After the delay, moves the VM to `to` and reports `obs`, unless another
    /// request came in meanwhile.
    fn later(&self, id: InstanceId, epoch: u64, delay: Duration, to: Option<Power>, obs: Observation) {
        let vms = self.vms.clone();
        let sink = self.sink.clone();
        self.handle.spawn(async move {
            tokio::time::sleep(delay).await;
            let current = {
                let Ok(mut vms) = vms.lock() else { return };
                match (vms.get_mut(&id), to) {
                    (Some(vm), Some(p)) if vm.epoch == epoch => {
                        vm.power = p;
                        let line = format!("[simulated] {id}: now {p:?}\n");
                        push_console(&mut vm.console, line.as_bytes());
                        true
                    }
                    (None, None) => true,
                    _ => false,
                }
            };
            if current {
                sink.report(&id, obs);
            }
        });
    }
}

fn push_console(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(bytes);
    if buf.len() > CONSOLE_LIMIT {
        let cut = buf.len() - CONSOLE_LIMIT;
        buf.drain(..cut);
    }
}

impl Runtime for SimulatedRuntime {
    fn name(&self) -> String {
        "simulated".into()
    }

    fn start(&self, spec: &InstanceSpec) -> Result<(), RuntimeError> {
        let epoch = {
            let mut vms = self.vms.lock().map_err(|_| RuntimeError::Failed("simulated runtime poisoned".into()))?;
            let vm = vms.entry(spec.id.clone()).or_insert(Vm { power: Power::Stopped, epoch: 0, console: Vec::new() });
            vm.epoch += 1;
            vm.power = Power::Booting;
            let line = format!(
                "[simulated] Strato simulated runtime: no virtual machine exists for {}.\n[simulated] booting {} ({} vCPU, {} MiB) from {}\n",
                spec.id, spec.instance_type, spec.vcpus, spec.memory_mib, spec.image_id
            );
            push_console(&mut vm.console, line.as_bytes());
            vm.epoch
        };
        self.later(spec.id.clone(), epoch, self.delay, Some(Power::Running), Observation::Running);
        Ok(())
    }

    fn stop(&self, id: &InstanceId, force: bool) -> Result<(), RuntimeError> {
        let epoch = self.with_vm(id, |vm| {
            vm.epoch += 1;
            vm.power = Power::Stopping;
            push_console(&mut vm.console, if force { b"[simulated] forced power off\n" } else { b"[simulated] ACPI power off\n" });
            vm.epoch
        })?;
        let delay = if force { Duration::ZERO } else { self.delay };
        self.later(id.clone(), epoch, delay, Some(Power::Stopped), Observation::Stopped);
        Ok(())
    }

    fn reboot(&self, id: &InstanceId) -> Result<(), RuntimeError> {
        self.with_vm(id, |vm| push_console(&mut vm.console, b"[simulated] reset\n"))
    }

    fn destroy(&self, id: &InstanceId, _keep: &[VolumeId]) -> Result<(), RuntimeError> {
        if let Ok(mut vms) = self.vms.lock() {
            vms.remove(id);
        }
        self.later(id.clone(), 0, self.delay, None, Observation::Gone);
        Ok(())
    }

    fn console_output(&self, id: &InstanceId) -> Result<Vec<u8>, RuntimeError> {
        self.with_vm(id, |vm| vm.console.clone()).or(Ok(Vec::new()))
    }

    fn observe(&self, id: &InstanceId) -> Option<Observation> {
        let vms = self.vms.lock().ok()?;
        vms.get(id).map(|vm| match vm.power {
            Power::Running | Power::Stopping => Observation::Running,
            Power::Booting | Power::Stopped => Observation::Stopped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    struct ChanSink(Mutex<mpsc::Sender<(InstanceId, Observation)>>);
    impl EventSink for ChanSink {
        fn report(&self, id: &InstanceId, o: Observation) {
            if let Ok(tx) = self.0.lock() {
                let _ = tx.send((id.clone(), o));
            }
        }
    }

    fn spec(id: &InstanceId) -> InstanceSpec {
        InstanceSpec {
            id: id.clone(),
            instance_type: "t2.micro".into(),
            vcpus: 1,
            memory_mib: 1024,
            image_id: strato_core::ids::ImageId::generate(),
            image_builtin: None,
            volumes: vec![],
            network: strato_core::runtime::NetworkSpec {
                vpc_id: strato_core::ids::VpcId::generate(),
                mac: "02:00:00:00:00:01".into(),
                private_ip: "10.0.0.4".parse().expect("ip"),
                prefix_len: 24,
                gateway: "10.0.0.1".parse().expect("ip"),
                public_ip: None,
            },
            user_data: None,
            ssh_public_key: None,
            hostname: "h".into(),
        }
    }

    #[tokio::test]
    async fn reports_in_order_and_drops_stale_reports() {
        let (tx, rx) = mpsc::channel();
        let rt = SimulatedRuntime::new(Arc::new(ChanSink(Mutex::new(tx))), Duration::from_millis(20)).expect("rt");
        let id = InstanceId::generate();
        rt.start(&spec(&id)).expect("start");
        // Stop before the boot report is due: the boot report is stale.
        rt.stop(&id, true).expect("stop");
        tokio::time::sleep(Duration::from_millis(80)).await;
        let got: Vec<Observation> = rx.try_iter().map(|(_, o)| o).collect();
        assert_eq!(got, vec![Observation::Stopped]);
        rt.destroy(&id, &[]).expect("destroy");
        tokio::time::sleep(Duration::from_millis(60)).await;
        let got: Vec<Observation> = rx.try_iter().map(|(_, o)| o).collect();
        assert_eq!(got, vec![Observation::Gone]);
        assert_eq!(rt.observe(&id), None);
    }
}
