//! The shared behaviour cases against `chat-server`, in-process and as a binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use harness::Target;
use runtime_polling::PollingServer;

mod in_process {
    harness::server_cases!(harness::Target::InProcess(
        harness::in_process::<runtime_polling::PollingServer>
    ));
}

mod binary {
    harness::server_cases!(harness::Target::Binary(env!("CARGO_BIN_EXE_chat-server")));
}

#[test]
fn five_thousand_clients_receive_a_broadcast() {
    // The polling runtime's own scale case (the shared case uses 1,000).
    harness::cases::broadcast_to(
        &Target::InProcess(harness::in_process::<PollingServer>),
        5000,
    );
}

#[test]
fn command_line() {
    harness::cases::command_line(env!("CARGO_BIN_EXE_chat-server"), "chat-server");
}

/// The same cases with every client on the TLS listener.
mod tls_in_process {
    harness::server_cases!(harness::Target::InProcess(
        harness::tls::in_process::<runtime_polling::PollingServer>
    ));

    #[test]
    fn refused_handshake_that_hangs_up_is_released_at_once() {
        harness::tls::refused_handshake_that_hangs_up_is_released_at_once(
            &harness::Target::InProcess(harness::tls::in_process::<runtime_polling::PollingServer>),
        );
    }
    harness::tls_cases!(harness::Target::InProcess(
        harness::tls::in_process::<runtime_polling::PollingServer>
    ));
}

mod tls_binary {
    harness::server_cases!(harness::Target::BinaryTls(env!(
        "CARGO_BIN_EXE_chat-server"
    )));
    harness::tls_cases!(harness::Target::BinaryTls(env!(
        "CARGO_BIN_EXE_chat-server"
    )));
}

#[test]
fn tls_command_line() {
    harness::tls::command_line(env!("CARGO_BIN_EXE_chat-server"));
}

/// The IRC cases, in-process and against the binary.
mod irc_in_process {
    harness::irc_cases!(harness::Target::InProcess(
        harness::in_process::<runtime_polling::PollingServer>
    ));
}

mod irc_binary {
    harness::irc_cases!(harness::Target::BinaryIrc(env!(
        "CARGO_BIN_EXE_chat-server"
    )));
}

#[test]
fn irc_command_line() {
    harness::irc::command_line(env!("CARGO_BIN_EXE_chat-server"));
}
