//! A person's shell: completions and man pages from the CLI definition,
//! the long `--version`, and `init`, whose fabric checks clean and which
//! never overwrites a file.

use std::process::{Command, Output};

fn sovereign(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sovereign")).args(args).output().unwrap()
}

#[test]
fn completions_and_man_pages_come_from_the_cli() {
    for (shell, mark) in [("bash", "complete -F"), ("zsh", "#compdef sovereign"), ("fish", "complete -c sovereign")] {
        let output = sovereign(&["completions", shell]);
        assert!(output.status.success());
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains(mark) && script.contains("apply") && script.contains("auto-approve"), "{shell}");
    }
    let output = sovereign(&["man"]);
    let page = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success() && page.contains(".TH sovereign") && page.contains("apply"), "{page}");
    let tmp = tempfile::tempdir().unwrap();
    let output = sovereign(&["man", "--dir", tmp.path().to_str().unwrap()]);
    assert!(output.status.success());
    let apply = std::fs::read_to_string(tmp.path().join("sovereign-apply.1")).unwrap();
    assert!(apply.contains("auto\\-approve"), "{apply}");
    assert!(tmp.path().join("sovereign.1").exists() && tmp.path().join("sovereign-init.1").exists());
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(tmp.path().join("sovereign.1")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644, "man pages are readable by every user");
}

#[test]
fn the_version_names_the_commit_and_the_catalogs_dates() {
    let output = sovereign(&["--version"]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success());
    assert!(text.starts_with(&format!("sovereign {} (commit ", env!("CARGO_PKG_VERSION"))), "{text}");
    for table in ["charts", "gpus", "models", "regions", "socs", "tpus"] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{table}: ")))
            .unwrap_or_else(|| panic!("{table}: {text}"));
        let date = line.split(": ").nth(1).unwrap();
        assert_eq!(date.len(), 10, "{line}");
    }
}

#[test]
fn init_writes_a_fabric_that_checks_clean_and_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    for (dir, flags) in [
        ("plain", vec![]),
        ("gpus", vec!["--gpu", "h100-80gb", "--gpus", "2", "--region", "eu-central"]),
        ("cloud", vec!["--tier", "cloud"]),
        ("device", vec!["--tier", "device", "--name", "shop-floor"]),
        // This machine, as `discover` finds it (no GPU here: CPUs and memory).
        ("here", vec!["--discover"]),
    ] {
        let folder = tmp.path().join(dir);
        let mut args = vec!["init", folder.to_str().unwrap()];
        args.extend(flags);
        let output = sovereign(&args);
        assert!(output.status.success(), "{dir}: {}", String::from_utf8_lossy(&output.stderr));
        let checked = sovereign(&["check", folder.to_str().unwrap(), "--deny-warnings", "--color", "never"]);
        let text = std::fs::read_to_string(folder.join("fabric.kdl")).unwrap();
        assert!(checked.status.success(), "{dir}: {}\n{text}", String::from_utf8_lossy(&checked.stderr));
    }
    let plain = std::fs::read_to_string(tmp.path().join("plain/fabric.kdl")).unwrap();
    assert!(plain.contains("fabric \"plain\""), "a new folder names the fabric: {plain}");
    let folder = tmp.path().join("gpus");
    let before = std::fs::read(folder.join("fabric.kdl")).unwrap();
    let output = sovereign(&["init", folder.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("never overwrites"));
    assert_eq!(std::fs::read(folder.join("fabric.kdl")).unwrap(), before);
    let output = sovereign(&["init", tmp.path().join("x").to_str().unwrap(), "--gpu", "h900"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a GPU of the catalog"));
    assert!(!tmp.path().join("x/fabric.kdl").exists());
}
