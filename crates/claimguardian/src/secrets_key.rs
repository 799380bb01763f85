//! The deployment's secrets key (seals private signing keys and, later,
//! TOTP and SSO client secrets at rest): 32 random bytes as hex in a file
//! readable only by its owner, created on first use by `up`.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::Context as _;
use cg_identity::SecretBox;

/// File name of the secrets key in a data directory.
pub const SECRETS_KEY_FILE: &str = "secrets.key";

/// Loads the secrets key of `data_dir`, creating it on first use.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<SecretBox> {
    let path = data_dir.join(SECRETS_KEY_FILE);
    if !path.exists() {
        let key: [u8; 32] = rand::random();
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("create {}", path.display()))?;
        file.write_all(hex::encode(key).as_bytes())?;
    }
    let mode = fs::metadata(&path)?.permissions().mode();
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "the secrets key {} is readable by others (mode {:o}): run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    let text = fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    SecretBox::from_hex(&text)
        .with_context(|| format!("{} must hold 64 hex digits", path.display()))
}
