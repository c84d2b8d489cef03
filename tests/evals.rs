//! Runs the reference evaluation worker's own tests (examples/evals/
//! test_worker.py: its metrics, and datasets read from JSONL and from an
//! Iceberg table with pyiceberg). `scripts/test` installs temporalio and
//! pyiceberg; without them this test fails and says what to install.

use std::path::Path;
use std::process::Command;

#[test]
fn the_reference_evaluation_worker_passes_its_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/evals");
    let probe = Command::new("python3").args(["-c", "import temporalio, pytest"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "the worker's tests need Python 3 with temporalio and pytest: `python3 -m pip install temporalio 'pyiceberg[pyarrow,sql-sqlite]' pytest` (scripts/test does this)"
    );
    let output = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_worker.py"])
        .current_dir(&dir)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the worker's tests failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
