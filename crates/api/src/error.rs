//! Every error Strato can return, mapped to its EC2 code and HTTP status in
//! exactly one place ([`ApiError::wire`]).

use strato_core::error::{Duplicate, Error, Limit};
use strato_core::ids::ResourceKind;

use crate::sigv4::AuthError;
use crate::xml::escape;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Domain(#[from] Error),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("Request would have succeeded, but DryRun flag is set.")]
    DryRun,
    #[error("The action {0} is not valid for this web service.")]
    InvalidAction(String),
    #[error("The request must contain the parameter Action")]
    MissingAction,
    #[error("Credential should be scoped to a valid region, not '{0}'. ")]
    InvalidRegion(String),
    #[error("The request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("Strato has no temporary credentials, so a request carrying X-Amz-Security-Token cannot be valid")]
    SecurityToken,
}

fn malformed_code(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Instance => "InvalidInstanceID.Malformed",
        ResourceKind::Image => "InvalidAMIID.Malformed",
        ResourceKind::Vpc => "InvalidVpcID.Malformed",
        ResourceKind::Subnet => "InvalidSubnetID.Malformed",
        ResourceKind::SecurityGroup => "InvalidGroupId.Malformed",
        ResourceKind::SecurityGroupRule => "InvalidSecurityGroupRuleId.Malformed",
        ResourceKind::ElasticIp => "InvalidAllocationID.Malformed",
        ResourceKind::EipAssociation => "InvalidAssociationID.Malformed",
        ResourceKind::RouteTable => "InvalidRouteTableID.Malformed",
        ResourceKind::RouteTableAssociation => "InvalidAssociationID.Malformed",
        ResourceKind::InternetGateway => "InvalidInternetGatewayID.Malformed",
        ResourceKind::NetworkInterface => "InvalidNetworkInterfaceID.Malformed",
        ResourceKind::NetworkInterfaceAttachment => "InvalidAttachmentID.Malformed",
        ResourceKind::Volume => "InvalidVolumeID.Malformed",
        ResourceKind::Snapshot => "InvalidSnapshotID.Malformed",
        ResourceKind::Reservation => "InvalidReservationID.Malformed",
        ResourceKind::DhcpOptions => "InvalidDhcpOptionsID.Malformed",
        ResourceKind::NetworkAcl => "InvalidNetworkAclID.Malformed",
        ResourceKind::KeyPair => "InvalidKeyPair.Malformed",
    }
}

fn not_found_code(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Instance => "InvalidInstanceID.NotFound",
        ResourceKind::Image => "InvalidAMIID.NotFound",
        ResourceKind::Vpc => "InvalidVpcID.NotFound",
        ResourceKind::Subnet => "InvalidSubnetID.NotFound",
        ResourceKind::SecurityGroup => "InvalidGroup.NotFound",
        ResourceKind::SecurityGroupRule => "InvalidSecurityGroupRuleId.NotFound",
        ResourceKind::KeyPair => "InvalidKeyPair.NotFound",
        ResourceKind::ElasticIp => "InvalidAllocationID.NotFound",
        ResourceKind::EipAssociation => "InvalidAssociationID.NotFound",
        ResourceKind::RouteTable => "InvalidRouteTableID.NotFound",
        ResourceKind::RouteTableAssociation => "InvalidAssociationID.NotFound",
        ResourceKind::InternetGateway => "InvalidInternetGatewayID.NotFound",
        ResourceKind::NetworkInterface => "InvalidNetworkInterfaceID.NotFound",
        ResourceKind::NetworkInterfaceAttachment => "InvalidAttachmentID.NotFound",
        ResourceKind::Volume => "InvalidVolume.NotFound",
        ResourceKind::Snapshot => "InvalidSnapshot.NotFound",
        ResourceKind::Reservation => "InvalidReservationID.NotFound",
        ResourceKind::DhcpOptions => "InvalidDhcpOptionID.NotFound",
        ResourceKind::NetworkAcl => "InvalidNetworkAclID.NotFound",
    }
}

fn limit_code(limit: Limit) -> &'static str {
    match limit {
        Limit::RulesPerSecurityGroup => "RulesPerSecurityGroupLimitExceeded",
        Limit::SecurityGroupsPerInterface => "SecurityGroupsPerInterfaceLimitExceeded",
        Limit::SecurityGroups => "SecurityGroupLimitExceeded",
        Limit::Addresses => "AddressLimitExceeded",
        Limit::Vpcs => "VpcLimitExceeded",
        Limit::Subnets => "SubnetLimitExceeded",
        Limit::Tags => "TagLimitExceeded",
        Limit::Instances => "InstanceLimitExceeded",
        Limit::Vcpus => "VcpuLimitExceeded",
        Limit::KeyPairs => "KeyPairLimitExceeded",
    }
}

impl ApiError {
    /// The EC2 error code and HTTP status of this error.
    pub fn wire(&self) -> (&'static str, u16) {
        match self {
            ApiError::Auth(AuthError::Missing) => ("MissingAuthenticationToken", 401),
            ApiError::Auth(AuthError::Incomplete(_)) => ("IncompleteSignature", 400),
            ApiError::Auth(AuthError::Expired(_)) => ("RequestExpired", 400),
            ApiError::Auth(AuthError::Failure(_)) => ("AuthFailure", 401),
            ApiError::InvalidRegion(_) | ApiError::SecurityToken => ("AuthFailure", 401),
            ApiError::DryRun => ("DryRunOperation", 412),
            ApiError::InvalidAction(_) => ("InvalidAction", 400),
            ApiError::MissingAction => ("MissingAction", 400),
            ApiError::TooLarge(_) => ("RequestEntityTooLarge", 413),
            ApiError::Domain(e) => match e {
                Error::MalformedId { kind, .. } => (malformed_code(*kind), 400),
                Error::NotFound { kind, .. } => (not_found_code(*kind), 400),
                Error::GroupNameNotFound { .. } => ("InvalidGroup.NotFound", 400),
                Error::KeyNameNotFound(_) => ("InvalidKeyPair.NotFound", 400),
                Error::AddressNotFound(_) => ("InvalidAddress.NotFound", 400),
                Error::MissingParameter(_) => ("MissingParameter", 400),
                Error::InvalidParameterValue(_) | Error::InvalidFilter(_) => ("InvalidParameterValue", 400),
                Error::InvalidParameter(_) => ("InvalidParameter", 400),
                Error::InvalidParameterCombination(_) => ("InvalidParameterCombination", 400),
                Error::UnknownParameter(_) => ("UnknownParameter", 400),
                Error::InvalidPaginationToken(_) => ("InvalidPaginationToken", 400),
                Error::IncorrectInstanceState { .. } | Error::IncorrectInstanceStateMsg(_) => ("IncorrectInstanceState", 400),
                Error::DependencyViolation(_) => ("DependencyViolation", 400),
                Error::CannotDelete(_) => ("CannotDelete", 400),
                Error::OperationNotPermitted(_) => ("OperationNotPermitted", 400),
                Error::UnauthorizedOperation(_) => ("UnauthorizedOperation", 403),
                Error::NotAuthorized(_) => ("AuthFailure", 400),
                Error::Duplicate { what, .. } => (
                    match what {
                        Duplicate::KeyPair => "InvalidKeyPair.Duplicate",
                        Duplicate::SecurityGroup => "InvalidGroup.Duplicate",
                        Duplicate::Permission => "InvalidPermission.Duplicate",
                        Duplicate::ImageName => "InvalidAMIName.Duplicate",
                    },
                    400,
                ),
                Error::PermissionNotFound(_) => ("InvalidPermission.NotFound", 400),
                Error::IdempotentParameterMismatch(_) => ("IdempotentParameterMismatch", 400),
                Error::LimitExceeded { limit, .. } => (limit_code(*limit), 400),
                Error::InvalidVpcRange(_) => ("InvalidVpc.Range", 400),
                Error::InvalidSubnetRange(_) => ("InvalidSubnet.Range", 400),
                Error::SubnetConflict(_) => ("InvalidSubnet.Conflict", 400),
                Error::AddressInUse(_) => ("InvalidIPAddress.InUse", 400),
                Error::InsufficientFreeAddresses(_) => ("InsufficientFreeAddressesInSubnet", 400),
                Error::InvalidKeyFormat(_) => ("InvalidKey.Format", 400),
                Error::InvalidBlockDeviceMapping(_) => ("InvalidBlockDeviceMapping", 400),
                Error::AlreadyAssociated(_) => ("Resource.AlreadyAssociated", 400),
                Error::GatewayNotAttached(_) => ("Gateway.NotAttached", 400),
                Error::RouteExists(_) => ("RouteAlreadyExists", 400),
                Error::RouteNotFound(_) => ("InvalidRoute.NotFound", 400),
                Error::VpcIdNotSpecified => ("VPCIdNotSpecified", 400),
                Error::InvalidId(_) => ("InvalidID", 400),
                Error::ImageUnavailable(_) => ("InvalidAMIID.Unavailable", 400),
                Error::InvalidImageName(_) => ("InvalidAMIName.Malformed", 400),
                Error::InvalidUserId(_) => ("InvalidUserID.Malformed", 400),
                Error::GroupReserved(_) => ("InvalidGroup.Reserved", 400),
                Error::InsufficientInstanceCapacity(_) => ("InsufficientInstanceCapacity", 500),
                Error::Unsupported(_) => ("UnsupportedOperation", 400),
                Error::Internal(_) => ("InternalError", 500),
            },
        }
    }

    /// The message sent to the client. Internal errors are described only in
    /// general terms; their detail goes to the log.
    pub fn message(&self) -> String {
        match self {
            ApiError::Domain(Error::Internal(_)) => {
                "An internal error has occurred. The request has been logged; please retry.".to_string()
            }
            other => other.to_string(),
        }
    }

    /// The `<Response><Errors>…` document.
    pub fn to_xml(&self, request_id: &str) -> String {
        let (code, _) = self.wire();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
            code,
            escape(&self.message()),
            escape(request_id)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        let e = ApiError::from(Error::not_found(ResourceKind::Image, "ami-12345678"));
        assert_eq!(e.wire(), ("InvalidAMIID.NotFound", 400));
        assert_eq!(ApiError::DryRun.wire(), ("DryRunOperation", 412));
        assert_eq!(ApiError::Auth(AuthError::Failure("x".into())).wire(), ("AuthFailure", 401));
        assert_eq!(ApiError::from(Error::internal("disk on fire")).wire().1, 500);
        assert!(!ApiError::from(Error::internal("disk on fire")).message().contains("disk"));
    }

    #[test]
    fn error_document_shape() {
        let doc = ApiError::InvalidAction("Nope".into()).to_xml("r-1");
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>InvalidAction</Code><Message>The action Nope is not valid for this web service.</Message></Error></Errors><RequestID>r-1</RequestID></Response>"
        );
    }
}
