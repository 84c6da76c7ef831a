//! `chat-server-std`: the chat server with one thread per client.

use std::process::ExitCode;

use runtime_common::cli;
use runtime_std::StdServer;

fn main() -> ExitCode {
    cli::server_main::<StdServer>("chat-server-std")
}
