//! Runs the editor tests in `tests/lsp/` (pytest-lsp, a real LSP client
//! library) against the binary built for this test run. `.ci/run` installs
//! pytest-lsp; without it this test fails and says how to install it.

use std::path::Path;
use std::process::Command;

#[test]
fn language_server_end_to_end() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lsp");
    let probe = Command::new("python3").args(["-c", "import pytest_lsp"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "the editor tests need Python 3 with pytest-lsp: `python3 -m pip install pytest-lsp` (.ci/run does this)"
    );
    let output = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .current_dir(&dir)
        .env("SOVEREIGN_BIN", env!("CARGO_BIN_EXE_sovereign"))
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "pytest-lsp tests failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
