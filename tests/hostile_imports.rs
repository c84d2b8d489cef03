//! Imports from a hostile spec: nothing outside the spec's folder is read
//! or shown, special files are never opened, and a chain of thousands of
//! files neither overflows the stack nor hangs.

use std::fs;
use std::os::unix::fs::symlink;
use std::process::{Command, Output};
use std::time::Duration;

const CANARY: &str = "sovereign-canary-6f1d2c9e";

fn check(dir: &std::path::Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sovereign"));
    command.current_dir(dir).args(["check", "--color", "never", "fabric.kdl"]);
    for (k, v) in env {
        command.env(k, v);
    }
    // A hang is a failure, not a stuck CI run.
    let mut child = command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("sovereign check did not finish within 30 s");
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_environment_and_files_outside_never_reach_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret.kdl"), format!("site \"{CANARY}\"\n")).unwrap();
    let spec = dir.path().join("spec");
    fs::create_dir_all(spec.join("sub")).unwrap();
    symlink("/proc/self/environ", spec.join("environ.kdl")).unwrap();
    symlink(outside.path().join("secret.kdl"), spec.join("sub/link.kdl")).unwrap();
    symlink(outside.path(), spec.join("linked-folder")).unwrap();
    let relative = format!("../../{}/secret.kdl", outside.path().file_name().unwrap().to_string_lossy());
    fs::write(
        spec.join("fabric.kdl"),
        format!(
            "fabric \"t\"\nimport \"/proc/self/environ\"\nimport \"environ.kdl\"\nimport \"sub/\"\nimport \"linked-folder\"\nimport \"{}\"\nimport \"{relative}\"\n",
            outside.path().join("secret.kdl").display()
        ),
    )
    .unwrap();
    let output = check(&spec, &[("SOVEREIGN_TEST_CANARY", CANARY)]);
    let text = format!("{}{}", stderr(&output), String::from_utf8_lossy(&output.stdout));
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(!text.contains(CANARY), "the canary leaked:\n{text}");
    assert_eq!(text.matches("SOV3010").count(), 6, "{text}");
}

#[test]
fn a_symlinked_root_into_proc_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    symlink("/proc/self/environ", dir.path().join("fabric.kdl")).unwrap();
    let output = check(dir.path(), &[("SOVEREIGN_TEST_CANARY", CANARY)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!stderr(&output).contains(CANARY));
}

#[test]
fn special_files_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.kdl");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    fs::create_dir(dir.path().join("folder")).unwrap();
    Command::new("mkfifo").arg(dir.path().join("folder/pipe.kdl")).status().unwrap();
    fs::write(dir.path().join("folder/site.kdl"), "site \"x\" tier=\"server\" region=\"eu-central\"\n").unwrap();
    fs::write(dir.path().join("notes.md"), "# not a spec\n\n- a\n- b\n").unwrap();
    fs::write(
        dir.path().join("fabric.kdl"),
        "fabric \"t\"\nimport \"fifo.kdl\"\nimport \"folder/\"\nimport \"notes.md\"\n",
    )
    .unwrap();
    let output = check(dir.path(), &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(text.matches("SOV3011").count(), 2, "one for the FIFO, one for the Markdown file:\n{text}");
    assert!(!text.contains("SOV1001"), "a Markdown file is never parsed:\n{text}");
    // The folder import skipped the FIFO and read the regular file.
    assert!(text.contains("in 2 files"), "{text}");
}

#[test]
fn a_long_import_chain_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let n = 3_000;
    fs::write(dir.path().join("fabric.kdl"), "fabric \"t\"\nimport \"f1.kdl\"\n").unwrap();
    for i in 1..n {
        fs::write(dir.path().join(format!("f{i}.kdl")), format!("import \"f{}.kdl\"\n", i + 1)).unwrap();
    }
    fs::write(dir.path().join(format!("f{n}.kdl")), "").unwrap();
    let output = check(dir.path(), &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(text.matches("SOV3012").count(), 1, "{text}");
}

#[test]
fn a_root_linked_out_of_its_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("hosts.yml"), format!("token: {CANARY}\n")).unwrap();
    symlink(outside.path().join("hosts.yml"), dir.path().join("fabric.kdl")).unwrap();
    let output = check(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!stderr(&output).contains(CANARY), "{}", stderr(&output));
}

#[test]
fn a_folder_import_does_not_walk_through_linked_folders() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::create_dir_all(outside.path().join("deep")).unwrap();
    fs::write(outside.path().join("deep/secret.kdl"), format!("site \"{CANARY}\"\n")).unwrap();
    fs::create_dir(dir.path().join("sites")).unwrap();
    fs::write(dir.path().join("sites/fra.kdl"), "site \"fra\" tier=\"server\" region=\"eu-central\"\n").unwrap();
    symlink(outside.path(), dir.path().join("sites/elsewhere")).unwrap();
    fs::write(dir.path().join("fabric.kdl"), "fabric \"t\"\nimport \"sites/\"\n").unwrap();
    let output = check(dir.path(), &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(!text.contains(CANARY) && !text.contains("secret.kdl"), "{text}");
}
