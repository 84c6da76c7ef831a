//! What the servers log about the core's events.

use std::net::SocketAddr;

use chat_core::Event;

/// Logs a core event with the peer's address when the runtime knows it:
/// joins and departures at info, closes at debug (at info when the
/// connection is reset), e.g. `alice left (#3.0): slow consumer [127.0.0.1:50412]`.
pub fn log_event(event: &Event, peer: Option<SocketAddr>) {
    let peer = peer.map(|addr| format!(" [{addr}]")).unwrap_or_default();
    match event {
        Event::Close {
            graceful: false, ..
        } => log::info!("{event}{peer}"),
        Event::Close { .. } => log::debug!("{event}{peer}"),
        Event::Resume { .. } => log::trace!("{event}{peer}"),
        Event::Joined { .. } | Event::Left { .. } => log::info!("{event}{peer}"),
    }
}
