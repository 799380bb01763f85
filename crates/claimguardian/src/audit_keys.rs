//! The audit checkpoint signing key of a deployment: a PKCS#8 PEM file
//! readable only by its owner, created on first use by `up`, with the public
//! key published beside it for offline verification.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use cg_audit::checkpoint::CheckpointSigner;

/// File name of the signing key in a data directory.
pub const SIGNING_KEY_FILE: &str = "audit-signing-key.pem";
/// File name of the published public key in a data directory.
pub const PUBLIC_KEY_FILE: &str = "audit-public-key.pem";

/// Loads the signing key at `path`.
pub fn load(path: &Path) -> anyhow::Result<CheckpointSigner> {
    let mode = fs::metadata(path)
        .with_context(|| format!("read the audit signing key {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "the audit signing key {} is readable by others (mode {:o}): run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    let pem = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    CheckpointSigner::from_pkcs8_pem(&pem)
        .with_context(|| format!("{} is not an Ed25519 PKCS#8 key", path.display()))
}

/// Loads the signing key of `data_dir`, creating it on first use, and
/// (re)writes the public key file. Returns the key and the public key path.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<(CheckpointSigner, PathBuf)> {
    let key_path = data_dir.join(SIGNING_KEY_FILE);
    let signer = if key_path.exists() {
        load(&key_path)?
    } else {
        let signer = CheckpointSigner::generate();
        let pem = signer
            .to_pkcs8_pem()
            .context("encode the audit signing key")?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .with_context(|| format!("create {}", key_path.display()))?;
        file.write_all(pem.as_bytes())?;
        signer
    };
    let public_path = data_dir.join(PUBLIC_KEY_FILE);
    let public_pem = signer
        .verifier()
        .to_public_key_pem()
        .context("encode the audit public key")?;
    fs::write(&public_path, public_pem)
        .with_context(|| format!("write {}", public_path.display()))?;
    Ok((signer, public_path))
}
