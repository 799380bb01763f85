//! Signed checkpoints: an Ed25519 signature over a chain's head at a sequence.
//!
//! The hash chain alone proves only that entries agree with each other;
//! whoever can write the table can rewrite the whole chain from genesis with
//! correct hashes. A checkpoint is signed with a key the writer does not hold,
//! so a rewritten or truncated chain no longer matches the checkpoints
//! published before.
//!
//! The signed message is
//! `b"claimguardian.audit.checkpoint.v1\0"` ‖ organization (`0x00`, or `0x01` +
//! 16 UUID bytes, as in the entry encoding) ‖ sequence (i64 big-endian) ‖ head
//! hash (32 bytes) ‖ time (i64 big-endian microseconds since the Unix epoch).
//! The key id is not signed: it names the key and must equal the id of the
//! key that verifies.
//!
//! Key files: the signing key is PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`,
//! what `openssl genpkey -algorithm ed25519` writes); the public key is
//! either SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`, what
//! `openssl pkey -pubout` writes) or its 32 bytes as 64 hex digits.

use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::encoding::write_organization;
use crate::entry::{AuditEntry, truncate_to_micros};

/// Domain-separation prefix of the checkpoint message.
pub const CHECKPOINT_DOMAIN: &[u8] = b"claimguardian.audit.checkpoint.v1\0";

/// A signed statement that `organization_id`'s chain had `head_hash` as the
/// hash of its entry at `sequence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub organization_id: Option<Uuid>,
    pub sequence: i64,
    pub head_hash: [u8; 32],
    /// When it was signed, at microsecond precision.
    pub time: DateTime<Utc>,
    /// [`key_id`] of the signing key.
    pub key_id: String,
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// The bytes the signature covers.
    pub fn signed_message(&self) -> Vec<u8> {
        message(
            self.organization_id,
            self.sequence,
            &self.head_hash,
            self.time,
        )
    }
}

fn message(
    organization_id: Option<Uuid>,
    sequence: i64,
    head_hash: &[u8; 32],
    time: DateTime<Utc>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 17 + 8 + 32 + 8);
    out.extend_from_slice(CHECKPOINT_DOMAIN);
    write_organization(organization_id, &mut out);
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(head_hash);
    out.extend_from_slice(&time.timestamp_micros().to_be_bytes());
    out
}

/// The first 16 hex digits of SHA-256 of the 32 public key bytes.
pub fn key_id(public_key: &VerifyingKey) -> String {
    let digest = Sha256::digest(public_key.as_bytes());
    hex::encode(&digest[..8])
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PKCS#8 PEM Ed25519 private key")]
    PrivateKey,
    #[error("not an Ed25519 public key (SubjectPublicKeyInfo PEM or 64 hex digits)")]
    PublicKey,
    #[error("the public key is of small order and would accept forged signatures")]
    WeakPublicKey,
    #[error("could not encode the key")]
    Encode,
}

/// Signs checkpoints. Holds the secret key, which its `Debug` never shows.
pub struct CheckpointSigner {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// A fresh key from the thread-local CSPRNG (ChaCha seeded by the OS).
    pub fn generate() -> CheckpointSigner {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(seed.as_mut());
        CheckpointSigner::from_key(SigningKey::from_bytes(&seed))
    }

    /// Reads a PKCS#8 PEM private key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<CheckpointSigner, KeyError> {
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|_| KeyError::PrivateKey)?;
        Ok(CheckpointSigner::from_key(key))
    }

    /// The key as PKCS#8 PEM, wiped from memory when dropped. Written as
    /// version 1 (the seed alone, as in RFC 8410's example): OpenSSL 3.0
    /// cannot read the version 2 that `SigningKey` writes.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let keypair = KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        keypair
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| KeyError::Encode)
    }

    fn from_key(key: SigningKey) -> CheckpointSigner {
        let key_id = key_id(&key.verifying_key());
        CheckpointSigner { key, key_id }
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// A verifier for this signer's public key.
    pub fn verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier::from_key(self.public_key())
    }

    /// Signs `head_hash` as the hash of `organization_id`'s entry at
    /// `sequence`; `time` is truncated to microseconds.
    pub fn sign(
        &self,
        organization_id: Option<Uuid>,
        sequence: i64,
        head_hash: [u8; 32],
        time: DateTime<Utc>,
    ) -> Checkpoint {
        let time = truncate_to_micros(time);
        let signature = self
            .key
            .sign(&message(organization_id, sequence, &head_hash, time));
        Checkpoint {
            organization_id,
            sequence,
            head_hash,
            time,
            key_id: self.key_id.clone(),
            signature: signature.to_bytes(),
        }
    }

    /// A checkpoint whose head is `entry`.
    pub fn checkpoint(&self, entry: &AuditEntry, time: DateTime<Utc>) -> Checkpoint {
        self.sign(entry.organization_id, entry.sequence, entry.hash, time)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("signed by key `{found}`, not by the published key `{expected}`")]
    UnknownKey { expected: String, found: String },
    #[error("the signature does not verify")]
    BadSignature,
}

/// Verifies checkpoints against one published public key.
#[derive(Debug, Clone)]
pub struct CheckpointVerifier {
    key: VerifyingKey,
    key_id: String,
}

impl CheckpointVerifier {
    /// Rejects small-order keys, under which forged signatures verify.
    pub fn new(key: VerifyingKey) -> Result<CheckpointVerifier, KeyError> {
        if key.is_weak() {
            return Err(KeyError::WeakPublicKey);
        }
        Ok(CheckpointVerifier::from_key(key))
    }

    fn from_key(key: VerifyingKey) -> CheckpointVerifier {
        CheckpointVerifier {
            key_id: key_id(&key),
            key,
        }
    }

    /// Parses 64 hex digits or a SubjectPublicKeyInfo PEM (surrounding
    /// whitespace allowed), as found in a published key file.
    pub fn parse(text: &str) -> Result<CheckpointVerifier, KeyError> {
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            CheckpointVerifier::from_public_key_pem(text)
        } else {
            CheckpointVerifier::from_hex(text)
        }
    }

    pub fn from_hex(text: &str) -> Result<CheckpointVerifier, KeyError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| KeyError::PublicKey)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::PublicKey)?;
        CheckpointVerifier::new(key)
    }

    pub fn from_public_key_pem(pem: &str) -> Result<CheckpointVerifier, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem).map_err(|_| KeyError::PublicKey)?;
        CheckpointVerifier::new(key)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.key.as_bytes())
    }

    pub fn to_public_key_pem(&self) -> Result<String, KeyError> {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|_| KeyError::Encode)
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.key
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Checks that `checkpoint` names this key and that its signature is
    /// valid (strict RFC 8032 verification: no malleable signatures).
    pub fn verify(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        if checkpoint.key_id != self.key_id {
            return Err(CheckpointError::UnknownKey {
                expected: self.key_id.clone(),
                found: checkpoint.key_id.clone(),
            });
        }
        let signature = Signature::from_bytes(&checkpoint.signature);
        self.key
            .verify_strict(&checkpoint.signed_message(), &signature)
            .map_err(|_| CheckpointError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::TimeZone;

    fn time() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 987_654_321).unwrap()
    }

    #[test]
    fn signs_and_verifies() {
        let signer = CheckpointSigner::generate();
        let checkpoint = signer.sign(Some(Uuid::from_u128(5)), 100, [7; 32], time());
        assert_eq!(checkpoint.time.timestamp_subsec_nanos(), 987_654_000);
        assert_eq!(checkpoint.key_id, signer.key_id());
        assert_eq!(checkpoint.key_id.len(), 16);
        signer.verifier().verify(&checkpoint).unwrap();
    }

    #[test]
    fn every_signed_field_matters() {
        let signer = CheckpointSigner::generate();
        let verifier = signer.verifier();
        let checkpoint = signer.sign(Some(Uuid::from_u128(5)), 100, [7; 32], time());
        let changes: [&dyn Fn(&mut Checkpoint); 6] = [
            &|c| c.organization_id = None,
            &|c| c.organization_id = Some(Uuid::from_u128(6)),
            &|c| c.sequence = 101,
            &|c| c.head_hash[0] ^= 1,
            &|c| c.time += chrono::Duration::microseconds(1),
            &|c| c.signature[10] ^= 1,
        ];
        for change in changes {
            let mut tampered = checkpoint.clone();
            change(&mut tampered);
            assert_eq!(
                verifier.verify(&tampered),
                Err(CheckpointError::BadSignature)
            );
        }
        let mut renamed = checkpoint;
        renamed.key_id = "0000000000000000".into();
        assert!(matches!(
            verifier.verify(&renamed),
            Err(CheckpointError::UnknownKey { .. })
        ));
    }

    #[test]
    fn another_key_is_rejected() {
        let signer = CheckpointSigner::generate();
        let other = CheckpointSigner::generate();
        let mut forged = other.sign(None, 1, [0; 32], time());
        assert!(matches!(
            signer.verifier().verify(&forged),
            Err(CheckpointError::UnknownKey { .. })
        ));
        // Claiming the published key's id does not help.
        forged.key_id = signer.key_id().to_owned();
        assert_eq!(
            signer.verifier().verify(&forged),
            Err(CheckpointError::BadSignature)
        );
    }

    #[test]
    fn platform_and_organization_messages_differ() {
        let signer = CheckpointSigner::generate();
        let platform = signer.sign(None, 1, [0; 32], time());
        let organization = signer.sign(Some(Uuid::nil()), 1, [0; 32], time());
        assert_ne!(platform.signed_message(), organization.signed_message());
        assert!(platform.signed_message().starts_with(CHECKPOINT_DOMAIN));
        assert_eq!(
            platform.signed_message().len(),
            CHECKPOINT_DOMAIN.len() + 1 + 48
        );
    }

    #[test]
    fn keys_round_trip_through_their_files() {
        let signer = CheckpointSigner::generate();
        let pem = signer.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        // The 48-byte version 1 document that OpenSSL reads and writes.
        assert!(pem.contains("\nMC4CAQAwBQYDK2VwBCIE"));
        let reread = CheckpointSigner::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(reread.public_key(), signer.public_key());

        let verifier = signer.verifier();
        let from_hex = CheckpointVerifier::parse(&format!("{}\n", verifier.to_hex())).unwrap();
        let from_pem = CheckpointVerifier::parse(&verifier.to_public_key_pem().unwrap()).unwrap();
        assert_eq!(from_hex.public_key(), signer.public_key());
        assert_eq!(from_pem.public_key(), signer.public_key());
        assert_eq!(from_pem.key_id(), signer.key_id());
    }

    #[test]
    fn reads_an_openssl_style_key() {
        // RFC 8410 section 10.3 example private key.
        let pem = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
                   -----END PRIVATE KEY-----\n";
        let signer = CheckpointSigner::from_pkcs8_pem(pem).unwrap();
        assert_eq!(
            signer.verifier().to_hex(),
            "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1"
        );
    }

    #[test]
    fn rejects_bad_keys() {
        assert!(matches!(
            CheckpointSigner::from_pkcs8_pem("not a key"),
            Err(KeyError::PrivateKey)
        ));
        assert!(matches!(
            CheckpointVerifier::parse("abcd"),
            Err(KeyError::PublicKey)
        ));
        assert!(matches!(
            CheckpointVerifier::parse("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
            Err(KeyError::PublicKey)
        ));
        // The identity point: small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            CheckpointVerifier::from_hex(&hex::encode(identity)),
            Err(KeyError::WeakPublicKey)
        ));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let signer = CheckpointSigner::generate();
        let pem = signer.to_pkcs8_pem().unwrap();
        let secret_hex = hex::encode(signer.key.to_bytes());
        let debug = format!("{signer:?}");
        assert!(debug.contains(signer.key_id()));
        assert!(!debug.contains(&secret_hex));
        assert!(!debug.contains(pem.lines().nth(1).unwrap()));
    }
}
