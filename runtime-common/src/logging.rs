//! What the servers log about the core's events.

use std::net::SocketAddr;

use chat_core::ServerEvent;

/// Logs a core event with the peer's address when the runtime knows it:
/// joins and departures at info, closes at debug (at info when the
/// connection is reset), e.g. `alice left (#3.0): slow consumer [127.0.0.1:50412]`.
pub fn log_event(event: &ServerEvent, peer: Option<SocketAddr>) {
    let peer = peer.map(|addr| format!(" [{addr}]")).unwrap_or_default();
    match event {
        ServerEvent::Close {
            graceful: false, ..
        } => log::info!("{event}{peer}"),
        ServerEvent::Close { .. } => log::debug!("{event}{peer}"),
        ServerEvent::Resume { .. } => log::trace!("{event}{peer}"),
        ServerEvent::Joined { .. } | ServerEvent::Left { .. } => log::info!("{event}{peer}"),
    }
}
