//! What the end-to-end tests share: running the binary from the repository root.

use std::process::{Command, Output};

/// Runs `sovereign` with `args` from the repository root, at a fixed width
/// and with `NO_COLOR` unset (tests that need it set it themselves).
pub(crate) fn sovereign(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sovereign"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env("COLUMNS", "100")
        .env_remove("NO_COLOR")
        .output()
        .expect("the binary runs")
}

/// Standard output as text.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}
