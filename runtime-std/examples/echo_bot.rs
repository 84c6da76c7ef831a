//! A chat bot on [`runtime_std::client::BlockingClient`]: it whispers every
//! private message back to its sender and answers a public `!time` with the
//! seconds since the Unix epoch.
//!
//! ```text
//! cargo run --release --bin chat-server &
//! cargo run -p sansio-chat-std --example echo_bot -- --connect 127.0.0.1:7878 --name echobot
//! ```
//!
//! Then, in a `chat` client: `!time`, or `/msg echobot hello`.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use chat_core::client::{ClientConfig, ClientEvent};
use runtime_std::client::BlockingClient;

const USAGE: &str = "usage: echo_bot [--connect ADDR] [--name NAME]";

fn main() -> ExitCode {
    let (addr, name) = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("echo_bot: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&addr, &name) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("echo_bot: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(addr: &str, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    // A bot never gets bored: no idle exit.
    let config = ClientConfig::without_idle_exit();
    let mut bot = BlockingClient::connect(addr, name, config)?;
    println!("connected to {addr} as {}", bot.name());

    // Waits as long as it takes for each event; PINGs are answered meanwhile.
    while let Some(event) = bot.next_event(None)? {
        match event {
            ClientEvent::Private { from, text } => bot.whisper(from.as_str(), text.as_str())?,
            ClientEvent::Message { text, .. } if text.as_str().trim() == "!time" => {
                let secs = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
                bot.say(&format!("{secs} seconds since the Unix epoch"))?;
            }
            ClientEvent::Closed { reason } => println!("connection closed: {reason:?}"),
            _ => {}
        }
    }
    Ok(())
}

/// Reads `--connect ADDR` and `--name NAME` (defaults `127.0.0.1:7878`, `echobot`).
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(String, String), String> {
    let (mut addr, mut name) = ("127.0.0.1:7878".to_string(), "echobot".to_string());
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--connect" => &mut addr,
            "--name" => &mut name,
            other => return Err(format!("unknown argument {other:?}")),
        };
        *slot = args.next().ok_or(format!("{flag} needs a value"))?;
    }
    Ok((addr, name))
}
