//! The shared behaviour cases against the tokio example server
//! (`examples/tokio_server.rs`), as a binary: it must pass what the two
//! real servers pass.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::OnceLock;

/// The example's binary, which `cargo test` builds beside this test's own
/// (`target/<profile>/examples/`).
fn example() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let test = std::env::current_exe().expect("the test's own path");
        let profile_dir = test
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile>/deps/<test>");
        let path = profile_dir.join("examples").join("tokio_server");
        assert!(
            path.exists(),
            "{} is missing: cargo test builds the examples",
            path.display()
        );
        path.to_string_lossy().into_owned()
    })
}

mod binary {
    harness::server_cases!(harness::Target::Binary(super::example()));
}
