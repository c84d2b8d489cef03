//! Fuzzes the loader with random import trees in memory: files importing
//! each other by relative, absolute, `..` and folder paths, symlinks in and
//! out of the spec's folder, special files and long chains. Whatever the
//! tree, the check ends, nothing outside the root folder is ever read (its
//! canary never reaches a source or a message), and every span is inside
//! its file.
#![no_main]

#[path = "shared.rs"]
mod shared;

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use sovereign_check::{Host as _, MemoryHost};
use sovereign_diagnostics::{Format, RenderConfig, render};

const CANARY: &str = "canary-outside-4b1f";


/// Paths the tree is built from: inside the root `spec/`, beside it, absolute.
const PATHS: [&str; 16] = [
    "spec/a.kdl",
    "spec/b.kdl",
    "spec/sub/c.kdl",
    "spec/sub/d.kdl",
    "spec/sub/deep/e.kdl",
    "spec/sub/",
    "spec/notes.md",
    "spec/pipe.kdl",
    "spec/link.kdl",
    "spec/sub/link-up.kdl",
    "spec/dirlink",
    "outside.kdl",
    "other/x.kdl",
    "/abs.kdl",
    "spec/fabric.kdl",
    "spec/sub/../a.kdl",
];

/// How a file names another: the path relative to the importer, or odd spellings.
fn spelling(from: &Path, to: &str, style: u8) -> String {
    if to.starts_with('/') || style % 5 == 4 {
        return format!("/{}", to.trim_start_matches('/'));
    }
    let from_dir = from.parent().unwrap_or(Path::new(""));
    let mut up = PathBuf::new();
    let mut dir = from_dir.to_path_buf();
    while !Path::new(to).starts_with(&dir) {
        up.push("..");
        if !dir.pop() {
            break;
        }
    }
    let rest = Path::new(to).strip_prefix(&dir).unwrap_or(Path::new(to));
    let relative = up.join(rest).to_string_lossy().into_owned();
    match style % 5 {
        1 => format!("./{relative}"),
        2 => format!("sub/../{relative}"),
        _ => relative,
    }
}

fuzz_target!(|data: &[u8]| {
    let stdlib = shared::stdlib();
    let mut host = MemoryHost::default();
    host.add("outside.kdl", format!("site \"{CANARY}\" tier=\"server\" region=\"eu-central\"\n"));
    host.add("other/x.kdl", format!("import \"../outside.kdl\"\nsite \"{CANARY}-2\"\n"));
    host.add("abs.kdl", format!("site \"{CANARY}-3\"\n"));
    host.add("spec/notes.md", "# notes\n");
    host.add_special("spec/pipe.kdl");
    let mut bytes = data.iter().copied();
    // Links: each of three may point anywhere in the vocabulary.
    for link in ["spec/link.kdl", "spec/sub/link-up.kdl", "spec/dirlink"] {
        if let Some(b) = bytes.next() {
            let target = PATHS[usize::from(b) % PATHS.len()].trim_end_matches('/');
            host.add_link(link, target);
        }
    }
    // Files: each spec file imports a few paths of the vocabulary.
    let mut root = String::from("fabric \"t\"\n");
    for (i, file) in ["spec/fabric.kdl", "spec/a.kdl", "spec/b.kdl", "spec/sub/c.kdl", "spec/sub/d.kdl", "spec/sub/deep/e.kdl"]
        .iter()
        .enumerate()
    {
        let mut text = if i == 0 { std::mem::take(&mut root) } else { String::new() };
        let count = bytes.next().map_or(0, |b| b % 4);
        for _ in 0..count {
            let (Some(target), Some(style)) = (bytes.next(), bytes.next()) else { break };
            let to = PATHS[usize::from(target) % PATHS.len()];
            text.push_str(&format!("import \"{}\"\n", spelling(Path::new(file), to, style)));
        }
        text.push_str(&format!("dataset \"d{i}\" classification=\"public\"\n"));
        host.add(file, text);
    }
    // A chain of generated files, as long as the input asks.
    let chain = bytes.next().map_or(0, |b| usize::from(b) * 2);
    for i in 0..chain {
        host.add(format!("spec/chain/{i}.kdl"), format!("import \"{}.kdl\"\n", i + 1));
    }
    if chain > 0 {
        host.add("spec/chain/0.kdl", "import \"1.kdl\"\n");
    }
    let root_path = Path::new("spec/fabric.kdl");
    let root_bytes = host.read(root_path).unwrap_or_default();
    let checked = sovereign_check::check(root_path, root_bytes, &host, stdlib);
    for (_, file) in checked.sources.spec_files() {
        assert!(!file.text.contains(CANARY), "a file outside the spec was read: {}", file.path.display());
    }
    for d in &checked.diagnostics {
        assert!(!d.message.contains(CANARY) && d.help.as_deref().is_none_or(|h| !h.contains(CANARY)));
        let text = checked.sources.text(d.primary.span.file);
        assert!(d.primary.span.end as usize <= text.len(), "span past the end");
    }
    let human = render(&checked.diagnostics, &checked.sources, Format::Human, RenderConfig { color: false, width: 80 });
    assert!(!human.contains(CANARY));
});
