//! `chat-server`: the reference chat server on one epoll loop.

use std::process::ExitCode;

use runtime_common::cli;
use runtime_polling::PollingServer;

fn main() -> ExitCode {
    cli::server_main::<PollingServer>("chat-server")
}
