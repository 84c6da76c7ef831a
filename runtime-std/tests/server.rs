//! The shared behaviour cases against `chat-server-std`, in-process and as a binary.

mod in_process {
    harness::server_cases!(harness::Target::InProcess(
        harness::in_process::<runtime_std::StdServer>
    ));
}

mod binary {
    harness::server_cases!(harness::Target::Binary(env!(
        "CARGO_BIN_EXE_chat-server-std"
    )));
}

#[test]
fn command_line() {
    harness::cases::command_line(env!("CARGO_BIN_EXE_chat-server-std"), "chat-server-std");
}

/// The same cases with every client on the TLS listener.
mod tls_in_process {
    harness::server_cases!(harness::Target::InProcess(
        harness::tls::in_process::<runtime_std::StdServer>
    ));

    #[test]
    fn refused_handshake_that_hangs_up_is_released_at_once() {
        harness::tls::refused_handshake_that_hangs_up_is_released_at_once(
            &harness::Target::InProcess(harness::tls::in_process::<runtime_std::StdServer>),
        );
    }
    harness::tls_cases!(harness::Target::InProcess(
        harness::tls::in_process::<runtime_std::StdServer>
    ));
}

mod tls_binary {
    harness::server_cases!(harness::Target::BinaryTls(env!(
        "CARGO_BIN_EXE_chat-server-std"
    )));
    harness::tls_cases!(harness::Target::BinaryTls(env!(
        "CARGO_BIN_EXE_chat-server-std"
    )));
}

#[test]
fn tls_command_line() {
    harness::tls::command_line(env!("CARGO_BIN_EXE_chat-server-std"));
}

/// The IRC cases, in-process and against the binary.
mod irc_in_process {
    harness::irc_cases!(harness::Target::InProcess(
        harness::in_process::<runtime_std::StdServer>
    ));
}

mod irc_binary {
    harness::irc_cases!(harness::Target::BinaryIrc(env!(
        "CARGO_BIN_EXE_chat-server-std"
    )));
}

#[test]
fn irc_command_line() {
    harness::irc::command_line(env!("CARGO_BIN_EXE_chat-server-std"));
}
