//! The compiler in process, in the manner of rust-analyzer's
//! `check(input, expect)`: a fixture of one or more files (`//- path`
//! headers) and the diagnostics it must produce, one line each as
//! `CODE path:line:column message`.

use std::path::Path;

use sovereign_check::{MemoryHost, Stdlib};

fn check(fixture: &str, expect: &str) {
    let mut host = MemoryHost::from_fixture(fixture);
    check_host(&mut host, expect);
}

fn check_host(host: &mut MemoryHost, expect: &str) {
    let (stdlib, _) = Stdlib::embedded();
    let root = Path::new("fabric.kdl");
    let bytes = sovereign_check::Host::read(host, root).expect("the fixture has a fabric.kdl");
    let checked = sovereign_check::check(root, bytes, host, &stdlib);
    let got: Vec<String> = checked
        .diagnostics
        .iter()
        .map(|d| {
            let at = checked.sources.line_col(d.primary.span.file, d.primary.span.start);
            let path = checked.sources.display_path(d.primary.span.file);
            format!("{} {path}:{}:{} {}", d.code.id, at.line, at.column, d.message)
        })
        .collect();
    let expected: Vec<&str> = expect.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    assert_eq!(got, expected, "\ngot:\n{}\n", got.join("\n"));
}

#[test]
fn imports_resolve_relative_to_the_importing_file() {
    check(
        r#"
fabric "t"
import "sites/fra.kdl"
//- sites/fra.kdl
import "../models.kdl"
//- models.kdl
model "m" base="llama-3.1-8b-instruct"
"#,
        "",
    );
}

#[test]
fn imports_may_not_leave_the_root_folder() {
    check(
        r#"
fabric "t"
import "../outside.kdl"
import "sub/../../outside.kdl"
import "/etc/passwd"
//- ../outside.kdl
site "x"
"#,
        r"
        SOV3010 fabric.kdl:3:8 `../outside.kdl` is outside the spec's folder
        SOV3010 fabric.kdl:4:8 `sub/../../outside.kdl` is outside the spec's folder
        SOV3010 fabric.kdl:5:8 an import path must be relative to the importing file
        ",
    );
}

#[test]
fn special_and_foreign_files_are_not_read() {
    let mut host =
        MemoryHost::from_fixture("fabric \"t\"\nimport \"pipe.kdl\"\nimport \"README.md\"\n//- README.md\n# x\n");
    host.add_special("pipe.kdl");
    check_host(
        &mut host,
        r"
        SOV3011 fabric.kdl:2:8 `pipe.kdl` is a FIFO, not a regular file
        SOV3011 fabric.kdl:3:8 `README.md` is not a `.kdl` file
        ",
    );
}

#[test]
fn import_chains_are_bounded() {
    let mut host = MemoryHost::default();
    host.add("fabric.kdl", "fabric \"t\"\nimport \"0.kdl\"\n");
    for i in 0..10_000 {
        host.add(format!("{i}.kdl"), format!("import \"{}.kdl\"\n", i + 1));
    }
    let depth = sovereign_check::MAX_IMPORT_DEPTH;
    check_host(&mut host, &format!("SOV3012 {}.kdl:1:8 imports are nested more than {depth} files deep", depth - 2));
}

#[test]
fn import_cycles_name_the_chain() {
    check(
        r#"
fabric "t"
import "a.kdl"
//- a.kdl
import "b.kdl"
//- b.kdl
import "a.kdl"
"#,
        "SOV3008 b.kdl:1:8 import cycle: `a.kdl` is already being imported",
    );
}

#[test]
fn a_duplicated_property_is_an_error_and_a_literal_anywhere_is_caught() {
    check(
        r#"
fabric "t"
secret "lf" from="env:LOGFIRE_TOKEN"
dataset "d" classification="restricted" classification="public"
observe "o" {
    export "logfire" region="eu" token="pylf_v1_eu_literal" token="lf"
    export "logfire" region="eu" token=12345
}
"#,
        r"
        SOV2007 fabric.kdl:4:41 property `classification` is given twice
        SOV3006 fabric.kdl:6:40 a secret must be referenced by the name of a declared `secret`, not written here
        SOV2007 fabric.kdl:6:61 property `token` is given twice
        SOV3006 fabric.kdl:7:40 `token` must name a declared `secret`, not hold a value
        ",
    );
}

#[test]
fn symlinks_are_followed_before_the_folder_check() {
    let mut host = MemoryHost::from_fixture(
        "fabric \"t\"\nimport \"link.kdl\"\nimport \"sub/\"\nimport \"inside.kdl\"\n//- ../secret.kdl\nsite \"outside\"\n//- real/ok.kdl\nsite \"ok\" tier=\"server\" region=\"eu-central\"\n",
    );
    host.add_link("link.kdl", "../secret.kdl");
    host.add_link("sub/escape.kdl", "../../secret.kdl");
    host.add_link("inside.kdl", "real/ok.kdl");
    check_host(
        &mut host,
        r"
        SOV3010 fabric.kdl:2:8 `link.kdl` is outside the spec's folder
        SOV3010 fabric.kdl:3:8 `sub/escape.kdl` is outside the spec's folder
        ",
    );
}

/// A secret written in clear is not in the IR: a canary literal appears
/// nowhere in the checked fabric (its debug form shows every value).
#[test]
fn a_secret_literal_never_enters_the_ir() {
    let canary = "pylf_v1_eu_IRCANARY_0123456789";
    let host = MemoryHost::from_fixture(&format!(
        "fabric \"t\"\nobserve \"o\" {{\n    export \"logfire\" region=\"eu\" token=\"{canary}\"\n    export \"logfire\" region=\"eu\" token=\"hunter-two\"\n}}\n"
    ));
    let (stdlib, _) = Stdlib::embedded();
    let root = Path::new("fabric.kdl");
    let bytes = sovereign_check::Host::read(&host, root).unwrap();
    let checked = sovereign_check::check(root, bytes, &host, &stdlib);
    let ir = format!("{:?}", checked.fabric);
    assert!(!ir.contains(canary) && !ir.contains("IRCANARY"), "the literal is in the IR");
    // A literal shaped like a name is dropped at resolution, when it names no secret.
    assert!(!ir.contains("hunter-two"), "the name-shaped literal is in the IR");
    assert_eq!(checked.diagnostics.iter().filter(|d| d.code.id == "SOV3006").count(), 2);
}
