//! The server settings passed on the command line at each start
//! (`pg_ctl start -o "-c name=value ..."`), since the port changes every time.

use std::path::Path;

/// Longest socket directory that still fits `<dir>/.s.PGSQL.65535` into the
/// 107 usable bytes of a Unix socket address.
const MAX_SOCKET_DIR_LEN: usize = 107 - "/.s.PGSQL.65535".len();

/// Settings for one start of the server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerSettings<'a> {
    pub(crate) port: u16,
    /// Where the Unix socket goes; `None` disables Unix sockets.
    pub(crate) socket_dir: Option<&'a str>,
    pub(crate) max_connections: u32,
    pub(crate) ephemeral: bool,
}

impl ServerSettings<'_> {
    /// The `-o` argument of `pg_ctl start`. pg_ctl hands it to `/bin/sh`, so
    /// every value is shell-quoted.
    pub(crate) fn postgres_options(&self) -> String {
        let mut settings: Vec<(&str, String)> = vec![
            ("port", self.port.to_string()),
            // TCP on the loopback interface only.
            ("listen_addresses", "127.0.0.1".to_owned()),
            // Our own socket directory, never the system server's
            // /var/run/postgresql; empty disables Unix sockets.
            (
                "unix_socket_directories",
                self.socket_dir.unwrap_or_default().to_owned(),
            ),
            ("max_connections", self.max_connections.to_string()),
        ];
        if self.ephemeral {
            // Throwaway test clusters: durability is not wanted, speed is.
            for name in ["fsync", "synchronous_commit", "full_page_writes"] {
                settings.push((name, "off".to_owned()));
            }
        }
        settings
            .iter()
            .map(|(name, value)| format!("-c {name}={}", shell_quote(value)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The data directory as the socket directory, unless its path is too long
/// for a socket address or cannot be written as a PostgreSQL directory list
/// entry; then `None` (TCP only).
pub(crate) fn socket_dir_for(data_dir: &Path) -> Option<&str> {
    let dir = data_dir.to_str()?;
    let usable = dir.len() <= MAX_SOCKET_DIR_LEN && !dir.contains([',', '"']) && dir.trim() == dir;
    usable.then_some(dir)
}

/// Quotes `value` for a POSIX shell: plain words as is, everything else in
/// single quotes.
fn shell_quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=".contains(c));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_for_an_ephemeral_cluster() {
        let settings = ServerSettings {
            port: 54321,
            socket_dir: Some("/tmp/it's here"),
            max_connections: 300,
            ephemeral: true,
        };
        assert_eq!(
            settings.postgres_options(),
            "-c port=54321 -c listen_addresses=127.0.0.1 \
             -c unix_socket_directories='/tmp/it'\\''s here' -c max_connections=300 \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        );
    }

    #[test]
    fn durable_cluster_without_unix_socket() {
        let settings = ServerSettings {
            port: 5999,
            socket_dir: None,
            max_connections: 100,
            ephemeral: false,
        };
        assert_eq!(
            settings.postgres_options(),
            "-c port=5999 -c listen_addresses=127.0.0.1 -c unix_socket_directories='' \
             -c max_connections=100"
        );
    }

    #[test]
    fn socket_dir_only_when_it_fits() {
        assert_eq!(socket_dir_for(Path::new("/tmp/x")), Some("/tmp/x"));
        let long = format!("/{}", "d".repeat(MAX_SOCKET_DIR_LEN));
        assert_eq!(socket_dir_for(Path::new(&long)), None);
        assert_eq!(socket_dir_for(Path::new("/tmp/a,b")), None);
    }
}
