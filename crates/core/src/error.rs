//! The domain's one error type.
//!
//! Every variant carries the context a user needs to fix the request, and its
//! `Display` is the message sent on the wire. Which EC2 error code and HTTP status a
//! variant becomes is decided in exactly one place, `strato_api::error`, so this
//! module never mentions HTTP.

use crate::ids::ResourceKind;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Service quotas that can be exceeded; each has its own EC2 error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    RulesPerSecurityGroup,
    SecurityGroupsPerInterface,
    SecurityGroups,
    Addresses,
    Vpcs,
    Subnets,
    Tags,
    Instances,
    Vcpus,
    KeyPairs,
}

/// Things that may exist only once; each has its own `*.Duplicate` code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duplicate {
    KeyPair,
    SecurityGroup,
    Permission,
    ImageName,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Invalid id: \"{id}\" (expecting \"{}...\")", kind.prefix())]
    MalformedId { kind: ResourceKind, id: String },

    #[error("{}", not_found_message(*kind, ids))]
    NotFound { kind: ResourceKind, ids: Vec<String> },

    #[error("The security group '{name}' does not exist in {}", vpc.as_deref().map(|v| format!("VPC '{v}'")).unwrap_or_else(|| "default VPC".to_string()))]
    GroupNameNotFound { name: String, vpc: Option<String> },

    #[error("The key pair '{0}' does not exist")]
    KeyNameNotFound(String),

    #[error("Address '{0}' not found.")]
    AddressNotFound(String),

    #[error("The request must contain the parameter {0}")]
    MissingParameter(String),

    #[error("{0}")]
    InvalidParameterValue(String),

    #[error("{0}")]
    InvalidParameter(String),

    #[error("{0}")]
    InvalidParameterCombination(String),

    #[error("The parameter {0} is not recognized")]
    UnknownParameter(String),

    #[error("The filter '{0}' is invalid")]
    InvalidFilter(String),

    #[error("Invalid NextToken: {0}")]
    InvalidPaginationToken(String),

    #[error("The instance '{id}' is not in a state from which it can be {verb}.")]
    IncorrectInstanceState { id: String, verb: &'static str },

    #[error("{0}")]
    IncorrectInstanceStateMsg(String),

    #[error("{0}")]
    DependencyViolation(String),

    #[error("{0}")]
    CannotDelete(String),

    #[error("{0}")]
    OperationNotPermitted(String),

    #[error("{0}")]
    UnauthorizedOperation(String),

    #[error("{message}")]
    Duplicate { what: Duplicate, message: String },

    #[error("{0}")]
    PermissionNotFound(String),

    #[error("{0}")]
    IdempotentParameterMismatch(String),

    #[error("{message}")]
    LimitExceeded { limit: Limit, message: String },

    #[error("The CIDR '{0}' is invalid.")]
    InvalidVpcRange(String),

    #[error("The CIDR '{0}' is invalid.")]
    InvalidSubnetRange(String),

    #[error("The CIDR '{0}' conflicts with another subnet")]
    SubnetConflict(String),

    #[error("{0}")]
    AddressInUse(String),

    #[error("{0}")]
    InsufficientFreeAddresses(String),

    #[error("{0}")]
    InvalidKeyFormat(String),

    #[error("{0}")]
    InvalidBlockDeviceMapping(String),

    #[error("{0}")]
    AlreadyAssociated(String),

    #[error("{0}")]
    GatewayNotAttached(String),
    #[error("{0}")]
    RouteExists(String),
    #[error("{0}")]
    RouteNotFound(String),

    #[error("No default VPC for this user. Give a VPC (or a subnet) explicitly.")]
    VpcIdNotSpecified,

    #[error("The ID '{0}' is not valid")]
    InvalidId(String),

    #[error("{0}")]
    ImageUnavailable(String),

    #[error("{0}")]
    InvalidImageName(String),

    #[error("Invalid user id: \"{0}\"")]
    InvalidUserId(String),

    #[error("The security group '{0}' is reserved")]
    GroupReserved(String),

    /// Acting on a resource the caller may see but not change (another
    /// account's image, say). EC2 calls this `AuthFailure`.
    #[error("{0}")]
    NotAuthorized(String),

    #[error("{0}")]
    InsufficientInstanceCapacity(String),

    #[error("{0}")]
    Unsupported(String),

    /// A fault of ours, never of the client's. The message is logged in full and
    /// sent to the client only in general terms.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn not_found(kind: ResourceKind, id: impl Into<String>) -> Self {
        Error::NotFound { kind, ids: vec![id.into()] }
    }

    pub fn invalid_value(param: &str, value: &str, why: &str) -> Self {
        Error::InvalidParameterValue(format!("Value ({value}) for parameter {param} is invalid. {why}"))
    }

    pub fn internal(what: impl std::fmt::Display) -> Self {
        Error::Internal(what.to_string())
    }
}

fn not_found_message(kind: ResourceKind, ids: &[String]) -> String {
    let joined = ids.join(", ");
    let plural = ids.len() > 1;
    let noun = match kind {
        ResourceKind::Instance => "instance ID",
        ResourceKind::Image => return format!("The image id '[{joined}]' does not exist"),
        ResourceKind::Vpc => "vpc ID",
        ResourceKind::Subnet => "subnet ID",
        ResourceKind::SecurityGroup => "security group",
        ResourceKind::SecurityGroupRule => "security group rule ID",
        ResourceKind::KeyPair => "key pair",
        ResourceKind::ElasticIp => "allocation ID",
        ResourceKind::EipAssociation => "association ID",
        ResourceKind::NetworkInterface => "networkInterface ID",
        ResourceKind::RouteTable => "routeTable ID",
        ResourceKind::InternetGateway => "internetGateway ID",
        ResourceKind::Volume => "volume",
        ResourceKind::Snapshot => "snapshot",
        ResourceKind::Reservation => "reservation ID",
        ResourceKind::RouteTableAssociation => "association ID",
        ResourceKind::NetworkInterfaceAttachment => "attachment ID",
        ResourceKind::DhcpOptions => "dhcpOptions ID",
        ResourceKind::NetworkAcl => "network ACL ID",
    };
    if plural {
        format!("The {noun}s '{joined}' do not exist")
    } else {
        format!("The {noun} '{joined}' does not exist")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_input() {
        let e = Error::NotFound { kind: ResourceKind::Instance, ids: vec!["i-1".into(), "i-2".into()] };
        assert_eq!(e.to_string(), "The instance IDs 'i-1, i-2' do not exist");
        let e = Error::not_found(ResourceKind::Image, "ami-12345678");
        assert_eq!(e.to_string(), "The image id '[ami-12345678]' does not exist");
        let e = Error::MalformedId { kind: ResourceKind::Vpc, id: "vpc-zz".into() };
        assert_eq!(e.to_string(), "Invalid id: \"vpc-zz\" (expecting \"vpc-...\")");
    }
}
