//! `chat`: the terminal chat client (see [`runtime_polling::terminal`]).

use std::process::ExitCode;
use std::time::Duration;

use chat_core::Name;
use clap::Parser;
use runtime_common::cli;
use runtime_polling::terminal;

/// The client command line of the contract.
#[derive(Debug, Parser)]
#[command(
    name = "chat",
    version,
    about = "Terminal chat client speaking the chat wire protocol, version 1"
)]
struct Args {
    /// Server address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    connect: String,
    /// Name to register as; without it the name is read from stdin.
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    name: Option<Name>,
    /// Seconds without user input before leaving (decimals allowed; 0 disables).
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_idle)]
    idle_exit: IdleExit,
    /// Speak TLS, verifying the server against the system's root
    /// certificates (or --ca) and the host name of --connect.
    #[arg(long)]
    tls: bool,
    /// Trust this CA (PEM) instead of the system's roots; implies --tls.
    #[arg(long, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// More logging on stderr (-v info, -vv debug); RUST_LOG works too.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

/// `None` disables the idle exit.
#[derive(Debug, Clone, Copy)]
struct IdleExit(Option<Duration>);

fn parse_idle(s: &str) -> Result<IdleExit, String> {
    if s.trim().parse::<f64>().is_ok_and(|secs| secs == 0.0) {
        return Ok(IdleExit(None));
    }
    cli::parse_secs(s).map(|d| IdleExit(Some(d)))
}

fn parse_name(s: &str) -> Result<Name, String> {
    Name::new(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logger(args.verbose);
    let tls = if args.tls || args.ca.is_some() {
        match runtime_common::tls::client_config(args.ca.as_deref()) {
            Ok(config) => Some(config),
            Err(error) => {
                eprintln!("chat: {error}");
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    ExitCode::from(terminal::run(terminal::Options {
        connect: args.connect,
        name: args.name,
        idle_exit: args.idle_exit.0,
        tls,
    }))
}
