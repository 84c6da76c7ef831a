//! [`Door`]: what an extra listener serves (the native protocol over TLS,
//! IRC, IRC over TLS), so that each runtime accepts on a list of them
//! without knowing which exist.

use std::sync::Arc;

use chat_core::server::Protocol;

/// What the connections of one listener speak.
#[derive(Debug, Clone)]
pub struct Door {
    /// The wire format.
    pub protocol: Protocol,
    /// TLS in front of it, with this certificate.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Door {
    /// The native protocol in the clear (the main listener).
    pub fn native() -> Self {
        Self {
            protocol: Protocol::Native,
            tls: None,
        }
    }

    /// The native protocol over TLS.
    pub fn native_tls(config: Arc<rustls::ServerConfig>) -> Self {
        Self {
            protocol: Protocol::Native,
            tls: Some(config),
        }
    }

    /// IRC in the clear.
    pub fn irc() -> Self {
        Self {
            protocol: Protocol::Irc,
            tls: None,
        }
    }

    /// IRC over TLS.
    pub fn irc_tls(config: Arc<rustls::ServerConfig>) -> Self {
        Self {
            protocol: Protocol::Irc,
            tls: Some(config),
        }
    }

    /// The words before `listening on IP:PORT` in the start-up lines.
    pub fn listening_prefix(&self) -> &'static str {
        match (self.protocol, self.tls.is_some()) {
            (Protocol::Native, false) => "",
            (Protocol::Native, true) => "tls ",
            (Protocol::Irc, false) => "irc ",
            (Protocol::Irc, true) => "irc tls ",
        }
    }
}

/// How logs name what a connection speaks.
pub fn door_label(protocol: Protocol, tls: bool) -> &'static str {
    match (protocol, tls) {
        (Protocol::Native, false) => "native",
        (Protocol::Native, true) => "native over TLS",
        (Protocol::Irc, false) => "irc",
        (Protocol::Irc, true) => "irc over TLS",
    }
}
