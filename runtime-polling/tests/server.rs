//! The shared behaviour cases against `chat-server`, in-process and as a binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use chat_core::ServerConfig;
use harness::{Running, Target};
use runtime_polling::PollingServer;

fn start(config: ServerConfig) -> Running {
    let server = PollingServer::bind("127.0.0.1:0", config).expect("bind");
    let addr = server.local_addr();
    let handle = server.stop_handle();
    let thread = std::thread::spawn(move || server.run());
    Running::thread(addr, Box::new(move || handle.stop()), thread)
}

mod in_process {
    harness::server_cases!(harness::Target::InProcess(super::start));
}

mod binary {
    harness::server_cases!(harness::Target::Binary(env!("CARGO_BIN_EXE_chat-server")));
}

#[test]
fn five_thousand_clients_receive_a_broadcast() {
    // The polling runtime's own scale case (the shared case uses 1,000).
    // This process holds both ends of every connection: raise the soft
    // descriptor limit to the hard one (util-linux `prlimit`, no unsafe).
    let _ = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            "--nofile=unlimited:",
        ])
        .status();
    let _ = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "prlimit --pid {} --nofile=$(ulimit -Hn):",
                std::process::id()
            ),
        ])
        .status();
    harness::cases::broadcast_to(&Target::InProcess(start), 5000);
}
