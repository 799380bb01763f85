//! Picking a free TCP port on the loopback interface.

use std::net::{Ipv4Addr, TcpListener};

use crate::PgClusterError;

/// A port that was free a moment ago: bind 127.0.0.1:0 and release it.
/// Someone else may take it before the server binds it, so starting is
/// retried with a new port when the server cannot bind.
pub(crate) fn free_port() -> Result<u16, PgClusterError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| PgClusterError::io("finding a free port on 127.0.0.1", error))
}
