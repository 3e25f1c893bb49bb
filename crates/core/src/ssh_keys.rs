//! SSH key material: generating key pairs, reading public keys a user imports,
//! and fingerprints computed the way EC2 computes them.
//!
//! - Created RSA: SHA-1 of the DER (PKCS#8) private key, hex with colons; the
//!   private key is returned as a PKCS#1 PEM.
//! - Imported RSA: MD5 of the public key blob (RFC 4716 §4), hex with colons.
//! - ED25519, created or imported: base64 SHA-256 of the public key blob, the
//!   OpenSSH ≥ 6.8 form; the private key is returned in OpenSSH's own format.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::SigningKey;
use md5::Md5;
use rand::rngs::OsRng;
use rand::RngCore;
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::{DecodePublicKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    Rsa,
    Ed25519,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ed25519 => "ed25519",
        }
    }
}

/// A freshly made key pair: what `CreateKeyPair` returns and keeps.
pub struct Generated {
    pub private_pem: String,
    /// `ssh-rsa AAAA…` / `ssh-ed25519 AAAA…`, without a comment.
    pub public_openssh: String,
    pub fingerprint: String,
}

/// A public key read from `ImportKeyPair`.
#[derive(Debug)]
pub struct Imported {
    pub key_type: KeyType,
    pub public_openssh: String,
    pub fingerprint: String,
}

fn put_string(buf: &mut Vec<u8>, s: &[u8]) {
    buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
    buf.extend_from_slice(s);
}

/// An SSH `mpint`: big-endian, with a leading zero byte when the top bit is set.
fn put_mpint(buf: &mut Vec<u8>, n: &BigUint) {
    let mut bytes = n.to_bytes_be();
    while bytes.len() > 1 && bytes[0] == 0 {
        bytes.remove(0);
    }
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    put_string(buf, &bytes);
}

fn rsa_blob(key: &RsaPublicKey) -> Vec<u8> {
    let mut blob = Vec::new();
    put_string(&mut blob, b"ssh-rsa");
    put_mpint(&mut blob, key.e());
    put_mpint(&mut blob, key.n());
    blob
}

fn ed25519_blob(public: &[u8; 32]) -> Vec<u8> {
    let mut blob = Vec::new();
    put_string(&mut blob, b"ssh-ed25519");
    put_string(&mut blob, public);
    blob
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn sha256_b64(blob: &[u8]) -> String {
    B64.encode(Sha256::digest(blob))
}

pub fn generate(key_type: KeyType) -> Result<Generated, String> {
    match key_type {
        KeyType::Rsa => {
            let key = RsaPrivateKey::new(&mut OsRng, 2048).map_err(|e| e.to_string())?;
            let pem = key.to_pkcs1_pem(LineEnding::LF).map_err(|e| e.to_string())?;
            let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
            let fingerprint = colon_hex(&Sha1::digest(der.as_bytes()));
            let public = RsaPublicKey::from(&key);
            Ok(Generated {
                private_pem: pem.trim_end().to_string(),
                public_openssh: format!("ssh-rsa {}", B64.encode(rsa_blob(&public))),
                fingerprint,
            })
        }
        KeyType::Ed25519 => {
            let signing = SigningKey::generate(&mut OsRng);
            let public = signing.verifying_key().to_bytes();
            let blob = ed25519_blob(&public);
            Ok(Generated {
                private_pem: openssh_ed25519_private(&signing, &blob),
                public_openssh: format!("ssh-ed25519 {}", B64.encode(&blob)),
                fingerprint: sha256_b64(&blob),
            })
        }
    }
}

/// The unencrypted `openssh-key-v1` container holding one ed25519 key.
fn openssh_ed25519_private(key: &SigningKey, public_blob: &[u8]) -> String {
    let public = key.verifying_key().to_bytes();
    let mut private = Vec::new();
    let check = OsRng.next_u32().to_be_bytes();
    private.extend_from_slice(&check);
    private.extend_from_slice(&check);
    put_string(&mut private, b"ssh-ed25519");
    put_string(&mut private, &public);
    let mut pair = key.to_bytes().to_vec();
    pair.extend_from_slice(&public);
    put_string(&mut private, &pair);
    put_string(&mut private, b"");
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }

    let mut out = b"openssh-key-v1\0".to_vec();
    put_string(&mut out, b"none");
    put_string(&mut out, b"none");
    put_string(&mut out, b"");
    out.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut out, public_blob);
    put_string(&mut out, &private);

    let b64 = B64.encode(&out);
    let mut pem = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(70) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END OPENSSH PRIVATE KEY-----");
    pem
}

/// A reader over an SSH wire-format blob.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn string(&mut self) -> Option<&'a [u8]> {
        if self.0.len() < 4 {
            return None;
        }
        let len = u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]]) as usize;
        let rest = &self.0[4..];
        if rest.len() < len {
            return None;
        }
        let (s, tail) = rest.split_at(len);
        self.0 = tail;
        Some(s)
    }
}

const BAD_FORMAT: &str = "Key is not in valid OpenSSH public key format";

/// Reads the public key material a user imports: an OpenSSH public key line, an
/// RFC 4716 (`---- BEGIN SSH2 PUBLIC KEY ----`) block, or a PEM public key.
pub fn import(material: &[u8]) -> Result<Imported, String> {
    let text = std::str::from_utf8(material).map_err(|_| BAD_FORMAT.to_string())?.trim();
    if text.starts_with("---- BEGIN SSH2 PUBLIC KEY ----") {
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with("----") && !l.contains(':') && !l.trim().is_empty())
            .map(str::trim)
            .collect();
        let blob = B64.decode(body).map_err(|_| BAD_FORMAT.to_string())?;
        return from_blob(&blob);
    }
    if text.starts_with("-----BEGIN PUBLIC KEY-----") {
        let key = RsaPublicKey::from_public_key_pem(text).map_err(|_| BAD_FORMAT.to_string())?;
        return from_blob(&rsa_blob(&key));
    }
    if text.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
        use rsa::pkcs1::DecodeRsaPublicKey;
        let key = RsaPublicKey::from_pkcs1_pem(text).map_err(|_| BAD_FORMAT.to_string())?;
        return from_blob(&rsa_blob(&key));
    }
    let mut parts = text.split_whitespace();
    let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
        return Err(BAD_FORMAT.into());
    };
    let blob = B64.decode(b64).map_err(|_| BAD_FORMAT.to_string())?;
    let imported = from_blob(&blob)?;
    let declared = match imported.key_type {
        KeyType::Rsa => "ssh-rsa",
        KeyType::Ed25519 => "ssh-ed25519",
    };
    if kind != declared {
        return Err(BAD_FORMAT.into());
    }
    Ok(imported)
}

fn from_blob(blob: &[u8]) -> Result<Imported, String> {
    let mut r = Reader(blob);
    let kind = r.string().ok_or(BAD_FORMAT)?;
    match kind {
        b"ssh-rsa" => {
            let e = r.string().ok_or(BAD_FORMAT)?;
            let n = r.string().ok_or(BAD_FORMAT)?;
            if !r.0.is_empty() {
                return Err(BAD_FORMAT.into());
            }
            let n = BigUint::from_bytes_be(n);
            let bits = n.bits();
            if ![1024, 2048, 4096].contains(&bits) {
                return Err(format!(
                    "Invalid RSA key length {bits}: EC2 accepts RSA keys of 1024, 2048 and 4096 bits"
                ));
            }
            let key = RsaPublicKey::new(n, BigUint::from_bytes_be(e)).map_err(|_| BAD_FORMAT.to_string())?;
            let canonical = rsa_blob(&key);
            Ok(Imported {
                key_type: KeyType::Rsa,
                public_openssh: format!("ssh-rsa {}", B64.encode(&canonical)),
                fingerprint: colon_hex(&Md5::digest(&canonical)),
            })
        }
        b"ssh-ed25519" => {
            let pk = r.string().ok_or(BAD_FORMAT)?;
            if pk.len() != 32 || !r.0.is_empty() {
                return Err(BAD_FORMAT.into());
            }
            let mut arr = [0u8; 32];
            arr.copy_from_slice(pk);
            ed25519_dalek::VerifyingKey::from_bytes(&arr).map_err(|_| BAD_FORMAT.to_string())?;
            let blob = ed25519_blob(&arr);
            Ok(Imported {
                key_type: KeyType::Ed25519,
                public_openssh: format!("ssh-ed25519 {}", B64.encode(&blob)),
                fingerprint: sha256_b64(&blob),
            })
        }
        other => Err(format!(
            "Unsupported key type '{}': EC2 accepts rsa and ed25519 keys",
            String::from_utf8_lossy(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_generation_round_trips_through_import() {
        let g = generate(KeyType::Ed25519).expect("generate");
        assert!(g.private_pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        assert!(g.private_pem.ends_with("-----END OPENSSH PRIVATE KEY-----"));
        let imported = import(g.public_openssh.as_bytes()).expect("import");
        assert_eq!(imported.key_type, KeyType::Ed25519);
        assert_eq!(imported.fingerprint, g.fingerprint);
        assert_eq!(g.fingerprint.len(), 44, "base64 of 32 bytes, padded");
    }

    #[test]
    fn rsa_generation_has_pkcs1_pem_and_sha1_fingerprint() {
        let g = generate(KeyType::Rsa).expect("generate");
        assert!(g.private_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert_eq!(g.fingerprint.split(':').count(), 20, "SHA-1 is 20 bytes");
        let imported = import(format!("{} comment here", g.public_openssh).as_bytes()).expect("import");
        assert_eq!(imported.key_type, KeyType::Rsa);
        assert_eq!(imported.fingerprint.split(':').count(), 16, "MD5 is 16 bytes");
        assert_eq!(imported.public_openssh, g.public_openssh);
    }

    /// Known keys and the fingerprints OpenSSH's `ssh-keygen -l` prints for them
    /// (`-E sha256` without its `SHA256:` prefix but with base64 padding, and
    /// `-E md5` for the RFC 4716 MD5 form).
    #[test]
    fn fingerprints_match_ssh_keygen() {
        let ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x";
        assert_eq!(import(ed.as_bytes()).expect("ed25519").fingerprint, "+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU=");
        let rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDriiWUp4u7wb6KyMnLLzsrUpzmocTMKKRpPqsfMF+Ef0bs9pKrieTImwAmd5slGZjWaacVVXCakWSKwhR2IIUGlmYPWDqjSDSqgDv+L9OFUY87uqlSc1eNxbxTDMV+pbX8LLRZnyEoCEcauXsCfiFuASyU3VC9DLExp6m/cK/oS+2+W0o7H7BnOfz+lPSLU9d4HH2CcLYD/Q3Kvz5e2lGlQyTM2Xm/hZQvxrHFBcOz2H4yS+cHzcyGCqxqO+lP7Z4I+OCovYUdvg24nXH8ZBnJsmDqAVTIsQc5CSKShGUbiQDx3omzb3rKCxJ5eAbvHz7lJhkdKUGm0Sa5I/vCgGIL x";
        assert_eq!(import(rsa.as_bytes()).expect("rsa").fingerprint, "9d:ae:3b:05:bc:51:ec:59:c8:b5:fa:dd:ab:90:76:e9");
    }

    #[test]
    fn garbage_is_refused() {
        for bad in ["", "ssh-rsa", "ssh-rsa !!!", "ssh-dss AAAAB3NzaC1kc3MAAACBAP", "hello world",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GK"] {
            assert!(import(bad.as_bytes()).is_err(), "{bad}");
        }
        // The declared type must match the blob.
        let g = generate(KeyType::Ed25519).expect("generate");
        let lie = g.public_openssh.replace("ssh-ed25519", "ssh-rsa");
        assert!(import(lie.as_bytes()).is_err());
    }
}
