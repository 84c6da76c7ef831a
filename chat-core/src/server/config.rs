//! [`ServerConfig`]: the server's limits and timers, with the contract's defaults.

use std::time::Duration;

use crate::channel::ChannelName;

/// Server settings. [`Default`] gives the contract's defaults.
///
/// Any value is accepted, `Duration::MAX` included (a deadline that would
/// overflow the clock is treated as never). Settings that cannot work are
/// refused by [`ServerConfig::validate`], which the programs call on their
/// command lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// A connection without a successful HELLO this long after connecting gets
    /// `BYE(TIMEOUT)`. Default 10 s.
    pub handshake_timeout: Duration,
    /// After this long with nothing received, the server sends PING, and again
    /// after each further interval of silence. Default 30 s.
    pub ping_interval: Duration,
    /// After this long with nothing received, `BYE(TIMEOUT)`. Default 60 s.
    pub idle_timeout: Duration,
    /// Open connections, registered or not. Default 4096.
    pub max_clients: usize,
    /// Output queued for one connection beyond which it is dropped as a slow
    /// consumer (unless it is still reading: see the module docs on
    /// congestion). Default 1 MiB.
    pub max_outbound: usize,
    /// How long a closing connection may take to flush its last bytes (its BYE)
    /// before it is closed anyway. Default 1 s.
    pub linger: Duration,
    /// How long a reader with output queued may go without taking any of it
    /// before it no longer slows senders down and is dropped at the limit.
    /// Default 500 ms.
    pub stall_grace: Duration,
    /// How long presence (a join to or a departure from the lobby) may wait
    /// for more when it follows other presence by less than this: in a
    /// connect storm each socket gets a few large writes instead of one per
    /// join. A lone join or departure is written at once; a storm's is
    /// written this long after the wait began, once presence has stopped
    /// for 10 ms, or once a reader has a quarter of `max_outbound` (at most
    /// 64 KiB) of it waiting; anything else for a reader (a message, a
    /// reply) takes its waiting presence along, in order. Zero writes
    /// presence at once. Default 250 ms.
    pub presence_batch: Duration,
    /// The IRC front door's settings (used only for connections accepted
    /// with [`Server::handle_accept_irc`](super::Server::handle_accept_irc),
    /// except the lobby's name, which native users live in).
    pub irc: IrcConfig,
}

/// Settings of the IRC front door (`../shared/IRC.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrcConfig {
    /// `--server-name`: the source of numerics and server messages.
    /// Default `chat.local`.
    pub server_name: String,
    /// `--lobby`: the channel native users live in. Default `#lobby`.
    pub lobby: ChannelName,
    /// `--motd`: the message of the day, one entry per line (`None`: 422).
    pub motd: Option<Vec<String>>,
    /// `--oper NAME:PASSWORD` accounts for `OPER`.
    pub opers: Vec<(String, String)>,
}

impl Default for IrcConfig {
    fn default() -> Self {
        Self {
            server_name: "chat.local".into(),
            lobby: ChannelName::default_lobby(),
            motd: None,
            opers: Vec::new(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_clients: 4096,
            max_outbound: 1 << 20,
            linger: Duration::from_secs(1),
            stall_grace: Duration::from_millis(500),
            presence_batch: Duration::from_millis(250),
            irc: IrcConfig::default(),
        }
    }
}

/// A setting that leaves a server that cannot serve anyone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A timer shorter than [`ServerConfig::MIN_DURATION`]: it would fire in
    /// a tight loop.
    #[error("{setting} must be at least 1 ms")]
    TooShort {
        /// The setting's name.
        setting: &'static str,
    },
    /// `max_clients` of zero refuses everyone.
    #[error("max clients must be at least 1")]
    NoClients,
    /// A server name that cannot be a message source: 1 to 63 bytes of
    /// letters, digits, `.` and `-`, with at least one `.` (so that no nick
    /// can look like it).
    #[error("a server name is 1 to 63 letters, digits, dots and dashes, with a dot")]
    ServerName,
    /// An output limit of zero drops every connection that has anything queued.
    #[error("max outbound must be at least {min} byte")]
    OutboundTooSmall {
        /// The smallest limit accepted.
        min: usize,
    },
}

impl ServerConfig {
    /// The shortest timer accepted by [`validate`](Self::validate).
    pub const MIN_DURATION: Duration = Duration::from_millis(1);
    /// The smallest `max_outbound` accepted by [`validate`](Self::validate).
    /// Any positive limit works: a reader with nothing queued always takes the
    /// next frame, and replies to a client's own requests are bounded by
    /// pausing its input, so a tiny limit only makes every queue one frame deep.
    pub const MIN_OUTBOUND: usize = 1;

    /// Checks that the settings leave a server that can serve someone.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (setting, value) in [
            ("handshake timeout", self.handshake_timeout),
            ("ping interval", self.ping_interval),
            ("idle timeout", self.idle_timeout),
        ] {
            if value < Self::MIN_DURATION {
                return Err(ConfigError::TooShort { setting });
            }
        }
        if self.max_clients == 0 {
            return Err(ConfigError::NoClients);
        }
        if self.max_outbound < Self::MIN_OUTBOUND {
            return Err(ConfigError::OutboundTooSmall {
                min: Self::MIN_OUTBOUND,
            });
        }
        if !valid_server_name(&self.irc.server_name) {
            return Err(ConfigError::ServerName);
        }
        Ok(())
    }
}

fn valid_server_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.contains('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_dead_settings_are_refused() {
        assert_eq!(ServerConfig::default().validate(), Ok(()));
        let refused = |config: ServerConfig| config.validate().is_err();
        assert!(refused(ServerConfig {
            ping_interval: Duration::from_nanos(100),
            ..ServerConfig::default()
        }));
        assert!(refused(ServerConfig {
            max_clients: 0,
            ..ServerConfig::default()
        }));
        assert!(refused(ServerConfig {
            max_outbound: 0,
            ..ServerConfig::default()
        }));
        for bad in ["", "local", "a b.c", "x:y.z"] {
            let mut config = ServerConfig::default();
            config.irc.server_name = bad.into();
            assert!(refused(config), "{bad:?}");
        }
        assert!(!refused(ServerConfig {
            max_outbound: ServerConfig::MIN_OUTBOUND,
            handshake_timeout: Duration::MAX,
            ..ServerConfig::default()
        }));
    }
}
