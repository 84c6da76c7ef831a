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
