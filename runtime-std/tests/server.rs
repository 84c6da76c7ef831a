//! The shared behaviour cases against `chat-server-std`, in-process and as a binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use chat_core::ServerConfig;
use harness::Running;
use runtime_std::StdServer;

fn start(config: ServerConfig) -> Running {
    let server = StdServer::bind("127.0.0.1:0", config).expect("bind");
    let addr = server.local_addr();
    let handle = server.stop_handle();
    let thread = std::thread::spawn(move || server.run());
    Running::thread(addr, Box::new(move || handle.stop()), thread)
}

mod in_process {
    harness::server_cases!(harness::Target::InProcess(super::start));
}

mod binary {
    harness::server_cases!(harness::Target::Binary(env!(
        "CARGO_BIN_EXE_chat-server-std"
    )));
}
