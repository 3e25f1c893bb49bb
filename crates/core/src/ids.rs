//! Typed resource ids.
//!
//! Every id that crosses a function boundary is one of the newtypes below, never a
//! bare `String`. An id is parsed exactly once, where it enters (the wire layer or
//! the store), and the parse checks its prefix and its hex body, so a malformed id
//! becomes `Invalid<Resource>ID.Malformed` at the edge and nothing deeper has to
//! worry about it. The kind of a resource is also recoverable from an id's prefix,
//! which is what `CreateTags` on a list of mixed ids relies on.

use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Every kind of resource Strato keeps. The variant decides the id prefix, the
/// `resource-type` name used by tags, and (in the wire layer) the error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ResourceKind {
    Instance,
    Reservation,
    Image,
    Snapshot,
    KeyPair,
    Vpc,
    Subnet,
    SecurityGroup,
    SecurityGroupRule,
    RouteTable,
    RouteTableAssociation,
    InternetGateway,
    ElasticIp,
    EipAssociation,
    NetworkInterface,
    NetworkInterfaceAttachment,
    Volume,
    DhcpOptions,
    NetworkAcl,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 19] = [
        Self::Instance,
        Self::Reservation,
        Self::Image,
        Self::Snapshot,
        Self::KeyPair,
        Self::Vpc,
        Self::Subnet,
        Self::SecurityGroup,
        Self::SecurityGroupRule,
        Self::RouteTable,
        Self::RouteTableAssociation,
        Self::InternetGateway,
        Self::ElasticIp,
        Self::EipAssociation,
        Self::NetworkInterface,
        Self::NetworkInterfaceAttachment,
        Self::Volume,
        Self::DhcpOptions,
        Self::NetworkAcl,
    ];

    /// The id prefix, dash included, as AWS writes it.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Instance => "i-",
            Self::Reservation => "r-",
            Self::Image => "ami-",
            Self::Snapshot => "snap-",
            Self::KeyPair => "key-",
            Self::Vpc => "vpc-",
            Self::Subnet => "subnet-",
            Self::SecurityGroup => "sg-",
            Self::SecurityGroupRule => "sgr-",
            Self::RouteTable => "rtb-",
            Self::RouteTableAssociation => "rtbassoc-",
            Self::InternetGateway => "igw-",
            Self::ElasticIp => "eipalloc-",
            Self::EipAssociation => "eipassoc-",
            Self::NetworkInterface => "eni-",
            Self::NetworkInterfaceAttachment => "eni-attach-",
            Self::Volume => "vol-",
            Self::DhcpOptions => "dopt-",
            Self::NetworkAcl => "acl-",
        }
    }

    /// The `resource-type` name of `DescribeTags` and `TagSpecification.N.ResourceType`.
    pub fn resource_type(self) -> &'static str {
        match self {
            Self::Instance => "instance",
            Self::Reservation => "reservation",
            Self::Image => "image",
            Self::Snapshot => "snapshot",
            Self::KeyPair => "key-pair",
            Self::Vpc => "vpc",
            Self::Subnet => "subnet",
            Self::SecurityGroup => "security-group",
            Self::SecurityGroupRule => "security-group-rule",
            Self::RouteTable => "route-table",
            Self::RouteTableAssociation => "route-table-association",
            Self::InternetGateway => "internet-gateway",
            Self::ElasticIp => "elastic-ip",
            Self::EipAssociation => "elastic-ip-association",
            Self::NetworkInterface => "network-interface",
            Self::NetworkInterfaceAttachment => "network-interface-attachment",
            Self::Volume => "volume",
            Self::DhcpOptions => "dhcp-options",
            Self::NetworkAcl => "network-acl",
        }
    }

    /// The kind an id belongs to, judged by its prefix alone. The longest prefix
    /// wins, so `eni-attach-…` is not taken for `eni-…`.
    pub fn of_id(id: &str) -> Option<ResourceKind> {
        Self::ALL
            .iter()
            .copied()
            .filter(|k| id.starts_with(k.prefix()))
            .max_by_key(|k| k.prefix().len())
    }

    pub fn from_resource_type(name: &str) -> Option<ResourceKind> {
        Self::ALL.iter().copied().find(|k| k.resource_type() == name)
    }
}

/// Random lowercase hex, the body of every generated id.
pub fn random_hex(len: usize) -> String {
    let mut bytes = vec![0u8; len.div_ceil(2)];
    rand::thread_rng().fill_bytes(&mut bytes);
    let mut s = hex::encode(bytes);
    s.truncate(len);
    s
}

/// AWS ids have an 8-digit (old) or 17-digit (current) lowercase hex body.
fn well_formed(id: &str, prefix: &str) -> bool {
    match id.strip_prefix(prefix) {
        Some(body) => {
            (body.len() == 8 || body.len() == 17)
                && body.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        None => false,
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const KIND: ResourceKind = $kind;

            /// A fresh id with a 17-digit random body.
            pub fn generate() -> Self {
                Self(format!("{}{}", $kind.prefix(), random_hex(17)))
            }

            /// Parses an id from input; a wrong prefix or body is `Malformed`.
            pub fn parse(s: &str) -> Result<Self, Error> {
                if well_formed(s, $kind.prefix()) {
                    Ok(Self(s.to_string()))
                } else {
                    Err(Error::MalformedId { kind: $kind, id: s.to_string() })
                }
            }

            /// For ids this process made up itself from a fixed, known-good form
            /// (such as the deterministic ids of built-in images).
            pub fn from_trusted(s: String) -> Self {
                debug_assert!(well_formed(&s, $kind.prefix()), "{s}");
                Self(s)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

typed_id!(InstanceId, ResourceKind::Instance);
typed_id!(ReservationId, ResourceKind::Reservation);
typed_id!(ImageId, ResourceKind::Image);
typed_id!(SnapshotId, ResourceKind::Snapshot);
typed_id!(KeyPairId, ResourceKind::KeyPair);
typed_id!(VpcId, ResourceKind::Vpc);
typed_id!(SubnetId, ResourceKind::Subnet);
typed_id!(SecurityGroupId, ResourceKind::SecurityGroup);
typed_id!(SecurityGroupRuleId, ResourceKind::SecurityGroupRule);
typed_id!(RouteTableId, ResourceKind::RouteTable);
typed_id!(RouteTableAssociationId, ResourceKind::RouteTableAssociation);
typed_id!(InternetGatewayId, ResourceKind::InternetGateway);
typed_id!(AllocationId, ResourceKind::ElasticIp);
typed_id!(AssociationId, ResourceKind::EipAssociation);
typed_id!(NetworkInterfaceId, ResourceKind::NetworkInterface);
typed_id!(AttachmentId, ResourceKind::NetworkInterfaceAttachment);
typed_id!(VolumeId, ResourceKind::Volume);
typed_id!(DhcpOptionsId, ResourceKind::DhcpOptions);
typed_id!(NetworkAclId, ResourceKind::NetworkAcl);

/// A 12-digit AWS account id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_string()))
        } else {
            Err(Error::InvalidParameterValue(format!(
                "Invalid account id '{s}': an account id is exactly 12 digits"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A region name such as `ap-northeast-2`. Only served regions are ever built.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Region(String);

impl Region {
    /// Callers check the name against the served list first (see `regions`).
    pub fn new_unchecked(s: &str) -> Self {
        Self(s.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = InstanceId::generate();
        assert_eq!(id.as_str().len(), 2 + 17);
        assert_eq!(InstanceId::parse(id.as_str()).ok(), Some(id));
        assert!(VpcId::parse(VpcId::generate().as_str()).is_ok());
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in ["", "i-", "i-123", "i-0123456789abcdef", "i-0123456789ABCDEF0", "x-12345678", "i-1234567g", "i-12345678 "] {
            assert!(
                matches!(InstanceId::parse(bad), Err(Error::MalformedId { kind: ResourceKind::Instance, .. })),
                "{bad:?} should be malformed"
            );
        }
        assert!(InstanceId::parse("i-12345678").is_ok(), "old 8-digit ids are accepted");
        assert!(ImageId::parse("ami-12345678").is_ok());
        assert!(ImageId::parse("i-12345678").is_err());
    }

    #[test]
    fn kind_of_id_prefers_the_longest_prefix() {
        assert_eq!(ResourceKind::of_id("eni-attach-0123abcd"), Some(ResourceKind::NetworkInterfaceAttachment));
        assert_eq!(ResourceKind::of_id("eni-0123abcd"), Some(ResourceKind::NetworkInterface));
        assert_eq!(ResourceKind::of_id("sgr-0123abcd"), Some(ResourceKind::SecurityGroupRule));
        assert_eq!(ResourceKind::of_id("sg-0123abcd"), Some(ResourceKind::SecurityGroup));
        assert_eq!(ResourceKind::of_id("rtbassoc-0123abcd"), Some(ResourceKind::RouteTableAssociation));
        assert_eq!(ResourceKind::of_id("bogus"), None);
    }

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!(AccountId::parse("123456789012").is_ok());
        assert!(AccountId::parse("12345678901").is_err());
        assert!(AccountId::parse("12345678901a").is_err());
    }
}
