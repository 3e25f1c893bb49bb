//! Connects the metadata service to the control plane: what it tells an
//! instance comes from the store at the moment of the request, and the
//! listeners the runtime makes are handed to it.

use std::sync::Arc;

use base64::Engine;
use strato_core::ids::InstanceId;
use strato_core::lifecycle::InstanceState;
use strato_core::runtime::MetadataEndpoint;
use strato_core::service::Ec2;
use strato_imds::{Imds, InstanceMetadata, MetadataSource};

pub struct StoreMetadata {
    pub ec2: std::sync::OnceLock<Arc<Ec2>>,
}

impl MetadataSource for StoreMetadata {
    fn metadata(&self, instance_id: &str) -> Option<InstanceMetadata> {
        let ec2 = self.ec2.get()?;
        let view = match ec2.metadata_view(instance_id) {
            Ok(v) => v?,
            Err(e) => {
                tracing::error!(instance = instance_id, error = %e, "metadata lookup failed");
                return None;
            }
        };
        let i = &view.instance;
        if i.state == InstanceState::Terminated {
            return None;
        }
        let zone_id = strato_core::regions::zones(i.region.as_str())
            .into_iter()
            .find(|z| z.name == i.availability_zone)
            .map(|z| z.zone_id)
            .unwrap_or_default();
        Some(InstanceMetadata {
            instance_id: i.id.to_string(),
            ami_id: i.image_id.to_string(),
            ami_launch_index: i.launch_index,
            reservation_id: i.reservation_id.to_string(),
            instance_type: i.instance_type.clone(),
            account_id: i.owner.to_string(),
            region: i.region.to_string(),
            availability_zone: i.availability_zone.clone(),
            availability_zone_id: zone_id,
            local_hostname: i.private_dns_name(),
            local_ipv4: i.private_ip.to_string(),
            public_hostname: i.public_dns_name(),
            public_ipv4: i.effective_public_ip().map(|ip| ip.to_string()),
            mac: i.mac.clone(),
            interface_id: i.eni_id.to_string(),
            subnet_id: i.subnet_id.to_string(),
            subnet_cidr: view.subnet.as_ref().map(|s| s.cidr.to_string()).unwrap_or_default(),
            vpc_id: i.vpc_id.to_string(),
            vpc_cidr: view.vpc.as_ref().map(|v| v.cidr.to_string()).unwrap_or_default(),
            security_groups: i.security_groups.iter().map(|g| (g.id.to_string(), g.name.clone())).collect(),
            key: view.key.as_ref().map(|k| (k.name.clone(), k.public_key_line())),
            user_data: i.user_data.as_ref().and_then(|u| base64::engine::general_purpose::STANDARD.decode(u).ok()),
            tags: i.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            tags_enabled: i.metadata.instance_metadata_tags == "enabled",
            root_device_name: i.root_device_name.clone(),
            launch_time: i.launch_time.iso8601(),
            tokens_required: i.metadata.http_tokens == "required",
            endpoint_enabled: i.metadata.http_endpoint == "enabled",
            hop_limit: i.metadata.hop_limit,
        })
    }
}

/// The runtime's view of the metadata service.
pub struct Endpoint(pub Arc<Imds>);

impl MetadataEndpoint for Endpoint {
    fn serve(&self, instance: &InstanceId, listener: std::net::TcpListener) {
        if let Err(e) = self.0.serve(instance.as_str(), listener) {
            tracing::error!(instance = %instance, error = %e, "could not serve instance metadata");
        }
    }

    fn stop(&self, instance: &InstanceId) {
        self.0.stop(instance.as_str());
    }
}
