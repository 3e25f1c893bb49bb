//! IPv4 CIDR blocks and private address allocation.
//!
//! Blocks are kept as (network, prefix length) with the host bits zero; a block
//! written with host bits set is refused rather than silently rounded, as AWS does.
//! In every subnet AWS keeps five addresses for itself: the network address, the
//! next three (router, DNS, future use) and the broadcast address.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    network: u32,
    prefix: u8,
}

#[derive(Debug, PartialEq, Eq)]
pub enum CidrError {
    /// Not of the form `a.b.c.d/n` with n in 0..=32.
    Syntax,
    /// Host bits are set (`10.0.0.1/16`).
    NotNetworkAddress,
}

impl Ipv4Cidr {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, CidrError> {
        if prefix > 32 {
            return Err(CidrError::Syntax);
        }
        let a = u32::from(addr);
        let c = Ipv4Cidr { network: a & Self::mask_of(prefix), prefix };
        if c.network != a {
            return Err(CidrError::NotNetworkAddress);
        }
        Ok(c)
    }

    fn mask_of(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix as u32)
        }
    }

    pub fn prefix(self) -> u8 {
        self.prefix
    }

    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    pub fn mask(self) -> Ipv4Addr {
        Ipv4Addr::from(Self::mask_of(self.prefix))
    }

    /// Number of addresses in the block.
    pub fn size(self) -> u64 {
        1u64 << (32 - self.prefix as u32)
    }

    pub fn last(self) -> Ipv4Addr {
        Ipv4Addr::from(self.network | !Self::mask_of(self.prefix))
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask_of(self.prefix) == self.network
    }

    pub fn contains_block(self, other: Ipv4Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.network())
    }

    pub fn overlaps(self, other: Ipv4Cidr) -> bool {
        self.contains_block(other) || other.contains_block(self)
    }

    /// The `n`th address of the block (0 is the network address).
    pub fn nth(self, n: u64) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(self.network.wrapping_add(n as u32)))
    }

    /// Addresses usable by instances: all but the first four and the last.
    pub fn usable(self) -> u64 {
        self.size().saturating_sub(5)
    }

    /// Is `ip` one that AWS keeps for itself in this subnet?
    pub fn is_reserved(self, ip: Ipv4Addr) -> bool {
        let off = u32::from(ip).wrapping_sub(self.network) as u64;
        off < 4 || off == self.size() - 1
    }

    /// The lowest usable address not in `used`.
    pub fn allocate(self, used: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        (4..self.size().saturating_sub(1)).filter_map(|n| self.nth(n)).find(|ip| !used.contains(ip))
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, CidrError> {
        let (addr, len) = s.split_once('/').ok_or(CidrError::Syntax)?;
        if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CidrError::Syntax);
        }
        let prefix: u8 = len.parse().map_err(|_| CidrError::Syntax)?;
        let addr = Ipv4Addr::from_str(addr).map_err(|_| CidrError::Syntax)?;
        Ipv4Cidr::new(addr, prefix)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

impl Serialize for Ipv4Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|_| serde::de::Error::custom(format!("bad CIDR {s}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Ipv4Cidr {
        s.parse().expect(s)
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(c("172.31.0.0/16").to_string(), "172.31.0.0/16");
        assert_eq!(c("0.0.0.0/0").size(), 1 << 32);
        assert_eq!(c("10.0.0.5/32").size(), 1);
        for bad in ["", "10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0/16", "10.0.0.0/1a", "a.b.c.d/8", "10.0.0.0/+8", "10.0.0.0/008"] {
            assert_eq!(bad.parse::<Ipv4Cidr>(), Err(CidrError::Syntax), "{bad}");
        }
        assert_eq!("10.0.0.1/16".parse::<Ipv4Cidr>(), Err(CidrError::NotNetworkAddress));
    }

    #[test]
    fn containment_and_overlap() {
        let vpc = c("10.0.0.0/16");
        assert!(vpc.contains_block(c("10.0.1.0/24")));
        assert!(!vpc.contains_block(c("10.1.0.0/24")));
        assert!(!vpc.contains_block(c("10.0.0.0/8")));
        assert!(c("10.0.0.0/24").overlaps(c("10.0.0.128/25")));
        assert!(!c("10.0.0.0/25").overlaps(c("10.0.0.128/25")));
        assert!(vpc.contains("10.0.255.255".parse().expect("ip")));
        assert!(!vpc.contains("10.1.0.0".parse().expect("ip")));
    }

    #[test]
    fn allocation_skips_the_five_reserved_addresses() {
        let s = c("10.0.1.0/28");
        assert_eq!(s.usable(), 11);
        let mut used = HashSet::new();
        let mut got = vec![];
        while let Some(ip) = s.allocate(&used) {
            used.insert(ip);
            got.push(ip.to_string());
        }
        assert_eq!(got.len(), 11);
        assert_eq!(got.first().map(String::as_str), Some("10.0.1.4"));
        assert_eq!(got.last().map(String::as_str), Some("10.0.1.14"));
        for r in ["10.0.1.0", "10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.15"] {
            assert!(s.is_reserved(r.parse().expect("ip")), "{r}");
        }
        assert!(!s.is_reserved("10.0.1.4".parse().expect("ip")));
    }

    #[test]
    fn allocation_reuses_freed_addresses_lowest_first() {
        let s = c("172.31.0.0/20");
        let mut used: HashSet<Ipv4Addr> = ["172.31.0.4", "172.31.0.5", "172.31.0.7"].iter().map(|x| x.parse().expect("ip")).collect();
        assert_eq!(s.allocate(&used), Some("172.31.0.6".parse().expect("ip")));
        used.insert("172.31.0.6".parse().expect("ip"));
        assert_eq!(s.allocate(&used), Some("172.31.0.8".parse().expect("ip")));
    }
}
