//! What the server binaries share: the command line of the contract, the
//! logger, and SIGINT/SIGTERM handling.

use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chat_core::ServerConfig;
use chat_core::channel::ChannelName;
use chat_core::server::Protocol;

use crate::Door;
use clap::{CommandFactory, FromArgMatches, Parser};

/// The server command line (identical for `chat-server` and `chat-server-std`).
#[derive(Debug, Clone, Parser)]
#[command(
    version,
    about = "Chat server speaking the chat wire protocol, version 1"
)]
pub struct ServerArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878", value_parser = parse_listen_addr)]
    pub listen: String,
    /// Most open connections, registered or not (at least 1).
    #[arg(long, value_name = "N", default_value = "4096", value_parser = parse_positive)]
    pub max_clients: usize,
    /// Seconds a connection has to register.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub handshake_timeout: Duration,
    /// Seconds of silence before the server sends PING.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub ping_interval: Duration,
    /// Seconds of silence before the server closes the connection.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_secs)]
    pub idle_timeout: Duration,
    /// Bytes of output queued for one connection before it is dropped (at
    /// least 1; a reader with nothing queued always takes the next frame).
    #[arg(long, value_name = "BYTES", default_value = "1048576", value_parser = parse_positive)]
    pub max_outbound: usize,
    /// Also serve the protocol over TLS on this address (with --tls-cert
    /// and --tls-key).
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key"], value_parser = parse_listen_addr)]
    pub tls_listen: Option<String>,
    /// The TLS certificate chain, PEM, the server's certificate first.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS private key, PEM.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Also accept IRC clients on this address (IRC.md).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen_addr)]
    pub irc_listen: Option<String>,
    /// Also accept IRC clients over TLS on this address (with --tls-cert
    /// and --tls-key).
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key"], value_parser = parse_listen_addr)]
    pub irc_tls_listen: Option<String>,
    /// The server's name in IRC prefixes and numerics.
    #[arg(long, value_name = "NAME", default_value = "chat.local")]
    pub server_name: String,
    /// The channel native-protocol users live in.
    #[arg(long, value_name = "CHANNEL", default_value = "#lobby", value_parser = parse_channel)]
    pub lobby: ChannelName,
    /// A message of the day for IRC users (422 ERR_NOMOTD without one).
    #[arg(long, value_name = "FILE")]
    pub motd: Option<PathBuf>,
    /// An IRC operator account for OPER (repeatable).
    #[arg(long, value_name = "NAME:PASSWORD", value_parser = parse_oper)]
    pub oper: Vec<(String, String)>,
    /// More logging on stderr (-v info, -vv debug); RUST_LOG works too.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl ServerArgs {
    /// The core configuration these flags describe.
    pub fn config(&self) -> ServerConfig {
        ServerConfig {
            handshake_timeout: self.handshake_timeout,
            ping_interval: self.ping_interval,
            idle_timeout: self.idle_timeout,
            max_clients: self.max_clients,
            max_outbound: self.max_outbound,
            irc: chat_core::server::IrcConfig {
                server_name: self.server_name.clone(),
                lobby: self.lobby.clone(),
                motd: None,
                opers: self.oper.clone(),
            },
            ..ServerConfig::default()
        }
    }
}

/// Parses a channel name for `--lobby`.
pub fn parse_channel(s: &str) -> Result<ChannelName, String> {
    ChannelName::new(s).map_err(|error| format!("`{s}`: {error}"))
}

/// Parses `NAME:PASSWORD` for `--oper`.
pub fn parse_oper(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((name, password)) if !name.is_empty() && !password.is_empty() => {
            Ok((name.to_owned(), password.to_owned()))
        }
        _ => Err(format!("`{s}` is not NAME:PASSWORD")),
    }
}

/// Reads a message of the day: one entry per line, at most 100 lines of
/// 400 bytes (what fits in a 372 reply), control characters dropped.
pub fn read_motd(path: &std::path::Path) -> io::Result<Vec<String>> {
    let text = std::fs::read(path)?;
    let text = String::from_utf8_lossy(&text);
    Ok(text
        .lines()
        .take(100)
        .map(|line| {
            let mut line: String = line.chars().filter(|c| !c.is_control()).collect();
            let mut end = line.len().min(400);
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
            line
        })
        .collect())
}

/// Parses a number of seconds, decimals allowed (`0.5`), from 1 ms to 10⁹ s:
/// a shorter timer would fire in a tight loop.
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!(
            "`{s}` must be a positive number of seconds, at most 1000000000"
        ));
    }
    let duration = Duration::from_secs_f64(secs);
    if duration < ServerConfig::MIN_DURATION {
        return Err(format!(
            "`{s}` is shorter than the minimum of 0.001 seconds"
        ));
    }
    Ok(duration)
}

/// Checks that a listening address has the form `HOST:PORT` (`[::1]:0`
/// for IPv6) with a port from 0 to 65535: anything else is a bad flag
/// (exit 2). A well-formed address that names nothing this machine can
/// bind (an unknown host, an address in use) is found when binding (exit 1).
pub fn parse_listen_addr(s: &str) -> Result<String, String> {
    let bad = || format!("`{s}` is not an address of the form HOST:PORT (127.0.0.1:7878, [::1]:0)");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || host == "[]" || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(s.to_owned())
}

/// Parses a whole number of at least 1.
pub fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

/// A server runtime the shared `main` can drive.
pub trait ChatServer: Sized + Send + 'static {
    /// Binds the listening socket; nothing is served until [`run`](Self::run).
    fn bind(addr: SocketAddr, config: ServerConfig) -> io::Result<Self>;
    /// The bound address.
    fn local_addr(&self) -> SocketAddr;
    /// A function that starts the graceful shutdown from another thread.
    fn stopper(&self) -> Box<dyn Fn() + Send + 'static>;
    /// Serves until stopped.
    fn run(self) -> io::Result<()>;
    /// Adds a listener whose connections speak what `door` says.
    fn listen_door(self, addr: SocketAddr, door: Door) -> io::Result<Self>;
    /// The address of the extra listener for `protocol`, over TLS or not.
    fn door_addr(&self, protocol: Protocol, tls: bool) -> Option<SocketAddr>;
}

/// Resolves a listening address given on the command line.
fn resolve(addr: &str) -> Option<SocketAddr> {
    addr.to_socket_addrs().ok().and_then(|mut a| a.next())
}

/// The whole `main` of a server binary: parse flags (exit 2 on bad ones), bind
/// (exit 1 when impossible), print `listening on IP:PORT`, serve until SIGINT
/// or SIGTERM, exit 0 after the graceful shutdown.
pub fn server_main<S: ChatServer>(name: &'static str) -> ExitCode {
    let args = match parse_args(name) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let Some(addr) = resolve(&args.listen) else {
        eprintln!("{name}: cannot bind {}: not a valid address", args.listen);
        return ExitCode::from(1);
    };
    // The certificate and the MOTD are read before anything listens.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match crate::tls::server_config(cert, key) {
            Ok(config) => Some(config),
            Err(error) => {
                eprintln!("{name}: {error}");
                return ExitCode::from(1);
            }
        },
        _ => None,
    };
    let mut config = args.config();
    if let Some(path) = &args.motd {
        match read_motd(path) {
            Ok(lines) => config.irc.motd = Some(lines),
            Err(error) => {
                eprintln!("{name}: cannot read the MOTD {}: {error}", path.display());
                return ExitCode::from(1);
            }
        }
    }
    // In the order the start-up lines are printed: IRC right after the
    // native line, as IRC.md asks.
    let mut doors = Vec::new();
    if let Some(listen) = &args.irc_listen {
        doors.push((listen, Door::irc()));
    }
    if let (Some(listen), Some(config)) = (&args.tls_listen, &tls) {
        doors.push((listen, Door::native_tls(Arc::clone(config))));
    }
    if let (Some(listen), Some(config)) = (&args.irc_tls_listen, &tls) {
        doors.push((listen, Door::irc_tls(Arc::clone(config))));
    }
    let mut resolved = Vec::new();
    for (listen, door) in doors {
        let Some(door_addr) = resolve(listen) else {
            eprintln!("{name}: cannot bind {listen}: not a valid address");
            return ExitCode::from(1);
        };
        resolved.push((door_addr, door));
    }
    let mut server = match S::bind(addr, config) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("{name}: cannot bind {addr}: {error}");
            return ExitCode::from(1);
        }
    };
    let mut lines = Vec::new();
    for (door_addr, door) in resolved {
        let (protocol, tls, prefix) = (door.protocol, door.tls.is_some(), door.listening_prefix());
        server = match server.listen_door(door_addr, door) {
            Ok(server) => server,
            Err(error) => {
                eprintln!("{name}: cannot bind {door_addr}: {error}");
                return ExitCode::from(1);
            }
        };
        if let Some(bound) = server.door_addr(protocol, tls) {
            lines.push(format!("{prefix}listening on {bound}"));
        }
    }
    if let Err(error) = on_termination(server.stopper()) {
        eprintln!("{name}: cannot install signal handlers: {error}");
        return ExitCode::from(1);
    }
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "listening on {}", server.local_addr());
    for line in lines {
        let _ = writeln!(stdout, "{line}");
    }
    let _ = stdout.flush();
    drop(stdout);
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error}");
            ExitCode::from(1)
        }
    }
}

/// The start of every server's `main`: the flags under the program's own
/// name (usage and exit 2 on bad ones, settings that cannot work included),
/// and the logger installed.
pub fn parse_args(name: &'static str) -> Result<ServerArgs, ExitCode> {
    // The flags are shared; the program's name (in usage and --version) is not.
    let matches = ServerArgs::command()
        .name(name)
        .bin_name(name)
        .get_matches();
    let args = ServerArgs::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    init_logger(args.verbose);
    if args.tls_cert.is_some() && args.tls_listen.is_none() && args.irc_tls_listen.is_none() {
        eprintln!("{name}: --tls-cert and --tls-key need --tls-listen or --irc-tls-listen");
        return Err(ExitCode::from(2));
    }
    match args.config().validate() {
        Ok(()) => Ok(args),
        Err(error) => {
            eprintln!("{name}: {error}");
            Err(ExitCode::from(2))
        }
    }
}

/// The start of a server with an event loop of its own (see the tokio
/// example): [`parse_args`], then the listening socket bound (non-blocking)
/// and `listening on IP:PORT` printed; a message and exit 1 if it cannot bind.
/// Extra listeners (TLS, IRC) are refused with exit 2: such a server has
/// only the one.
pub fn start(name: &'static str) -> Result<(ServerArgs, std::net::TcpListener), ExitCode> {
    let args = parse_args(name)?;
    // One listener only: refuse what would otherwise be silently ignored.
    if args.tls_listen.is_some() || args.irc_listen.is_some() || args.irc_tls_listen.is_some() {
        eprintln!(
            "{name}: serves the native protocol in the clear only (no --tls-listen, --irc-listen or --irc-tls-listen)"
        );
        return Err(ExitCode::from(2));
    }
    let bound = crate::listen(&args.listen).and_then(|listener| {
        listener.set_nonblocking(true)?;
        Ok((listener.local_addr()?, listener))
    });
    match bound {
        Ok((addr, listener)) => {
            println!("listening on {addr}");
            Ok((args, listener))
        }
        Err(error) => {
            eprintln!("{name}: cannot bind {}: {error}", args.listen);
            Err(ExitCode::from(1))
        }
    }
}

/// Calls `stop` (once per signal) on SIGINT or SIGTERM, from a dedicated thread.
pub fn on_termination(stop: Box<dyn Fn() + Send + 'static>) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                log::info!("signal {signal} received");
                stop();
            }
        })?;
    Ok(())
}

/// Installs the logger (`env_logger`, on stderr, with timestamps): the level
/// from `-v` flags (`-v` info, `-vv` debug, `-vvv` trace), else from
/// `RUST_LOG` (a level or `module=level` directives), else `warn`.
pub fn init_logger(verbose: u8) {
    let mut builder = env_logger::Builder::new();
    match verbose {
        0 => {
            builder.filter_level(log::LevelFilter::Warn);
            builder.parse_default_env();
        }
        1 => {
            builder.filter_level(log::LevelFilter::Info);
        }
        2 => {
            builder.filter_level(log::LevelFilter::Debug);
        }
        _ => {
            builder.filter_level(log::LevelFilter::Trace);
        }
    }
    builder.format_timestamp_millis();
    // A logger already installed (by an embedding program) is kept.
    let _ = builder.try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_accept_decimals_and_refuse_nonsense() {
        assert_eq!(parse_secs("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_secs("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_secs("0.001"), Ok(Duration::from_millis(1)));
        for bad in ["", "x", "-1", "0", "inf", "NaN", "1e10", "1e-10", "0.0009"] {
            assert!(parse_secs(bad).is_err(), "{bad}");
        }
        for (value, ok) in [("1", true), ("4096", true), ("0", false), ("-3", false)] {
            assert_eq!(parse_positive(value).is_ok(), ok, "{value}");
        }
        for flag in ["--max-clients", "--max-outbound"] {
            assert!(ServerArgs::try_parse_from(["chat-server", flag, "0"]).is_err());
        }
    }

    #[test]
    fn defaults_are_the_contracts() {
        let args = ServerArgs::try_parse_from(["chat-server"]).unwrap();
        assert_eq!(args.listen, "127.0.0.1:7878");
        assert_eq!(args.config(), ServerConfig::default());
        let args = ServerArgs::try_parse_from([
            "chat-server",
            "--listen",
            "127.0.0.1:0",
            "--max-clients",
            "3",
            "--handshake-timeout",
            "0.25",
            "--ping-interval",
            "1",
            "--idle-timeout",
            "2",
            "--max-outbound",
            "100",
        ])
        .unwrap();
        assert_eq!(args.listen, "127.0.0.1:0");
        let config = args.config();
        assert_eq!(config.max_clients, 3);
        assert_eq!(config.handshake_timeout, Duration::from_millis(250));
        assert_eq!(config.ping_interval, Duration::from_secs(1));
        assert_eq!(config.idle_timeout, Duration::from_secs(2));
        assert_eq!(config.max_outbound, 100);
        assert_eq!(config.linger, ServerConfig::default().linger);
        assert!(ServerArgs::try_parse_from(["chat-server", "--bogus"]).is_err());
    }
}
