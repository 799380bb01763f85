//! Secrets at rest: AES-256-GCM under the deployment's secrets key (from
//! configuration), a fresh random nonce per value. Used for what must be
//! read back (private signing keys; later TOTP secrets and SSO client
//! secrets); what only needs checking is hashed instead.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};

const NONCE_LEN: usize = 12;
/// Format tag, so a later scheme can coexist.
const VERSION: u8 = 1;

/// The key that seals secrets at rest. Never printed.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the secrets key must be 32 bytes as 64 hex digits")]
    BadKey,
    #[error("a sealed secret is malformed or was sealed with another key")]
    Unreadable,
}

impl SecretBox {
    /// A box from 32 key bytes.
    pub fn new(key: &[u8; 32]) -> SecretBox {
        SecretBox {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// A box from 64 hex digits (configuration).
    pub fn from_hex(hex_key: &str) -> Result<SecretBox, SecretError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| SecretError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretError::BadKey)?;
        Ok(SecretBox::new(&key))
    }

    /// A box with a random key (tests, single-process runs).
    pub fn generate() -> SecretBox {
        SecretBox::new(&rand::random())
    }

    /// `version || nonce || ciphertext+tag`.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce_bytes), plaintext)
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(SecretError::Unreadable);
        }
        let (nonce, body) = sealed[1..].split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| SecretError::Unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let key = SecretBox::generate();
        let sealed = key.seal(b"private signing key");
        assert!(
            !sealed.windows(7).any(|w| w == b"private"),
            "plaintext visible"
        );
        assert_eq!(
            key.open(&sealed).as_deref(),
            Ok(&b"private signing key"[..])
        );
        assert_eq!(
            SecretBox::generate().open(&sealed),
            Err(SecretError::Unreadable)
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(key.open(&tampered), Err(SecretError::Unreadable));
        assert_ne!(key.seal(b"x"), key.seal(b"x"), "nonces are fresh");
        assert!(SecretBox::from_hex("abc").is_err());
    }
}
