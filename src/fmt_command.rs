//! `sovereign fmt`: rewrites spec files in the one canonical style
//! (`sovereign_syntax::format`), or with `--check` reports which would
//! change, with a diff, and exits 1.
//!
//! A file with syntax errors is left alone and its errors reported; a
//! file is rewritten atomically (a temporary file renamed over it), and
//! only when it changes.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sovereign_diagnostics::{Format, RenderConfig, SourceMap, render};
use sovereign_syntax::FormatError;

use crate::FmtArgs;
use crate::check_command::render_config;

pub(crate) fn run(args: &FmtArgs) -> ExitCode {
    let config = render_config(args.color);
    let mut stderr = std::io::stderr();
    if args.paths.len() == 1 && args.paths[0] == Path::new("-") {
        return stdin_to_stdout(config, args.check);
    }
    let paths = if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths.clone() };
    let mut files = Vec::new();
    for path in &paths {
        match kdl_files(path) {
            Ok(found) => files.extend(found),
            Err(message) => {
                let _ = writeln!(stderr, "error: {message}");
                return ExitCode::from(2);
            }
        }
    }
    let (mut changed, mut failed) = (0usize, 0usize);
    for file in &files {
        let text = match std::fs::read(file).map(String::from_utf8) {
            Ok(Ok(text)) => text,
            Ok(Err(_)) => {
                failed += 1;
                let _ = writeln!(stderr, "{}: not formatted: the file is not valid UTF-8", file.display());
                continue;
            }
            Err(error) => {
                let _ = writeln!(stderr, "error: cannot read {}: {error}", file.display());
                return ExitCode::from(2);
            }
        };
        match sovereign_syntax::format(&text) {
            Ok(formatted) if formatted == text => {}
            Ok(formatted) => {
                changed += 1;
                if args.check {
                    let _ = std::io::stdout().write_all(diff(file, &text, &formatted).as_bytes());
                } else if let Err(error) = write_atomically(file, &formatted) {
                    let _ = writeln!(stderr, "error: cannot write {}: {error}", file.display());
                    return ExitCode::from(2);
                }
            }
            Err(error) => {
                failed += 1;
                report(file, &text, &error, config);
            }
        }
    }
    let verb = if args.check { "would be reformatted" } else { "reformatted" };
    let _ = writeln!(stderr, "{changed} of {} file(s) {verb}; {failed} left alone because of errors", files.len());
    if failed > 0 || (args.check && changed > 0) { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// `sovereign fmt -`: for editors and pipes. With `--check`, the diff
/// instead of the text, and exit 1 when it would change.
fn stdin_to_stdout(config: RenderConfig, check: bool) -> ExitCode {
    let mut text = String::new();
    if let Err(error) = std::io::stdin().read_to_string(&mut text) {
        let _ = writeln!(std::io::stderr(), "error: cannot read standard input: {error}");
        return ExitCode::from(2);
    }
    match sovereign_syntax::format(&text) {
        Ok(formatted) if check => {
            if formatted == text {
                return ExitCode::SUCCESS;
            }
            let _ = std::io::stdout().write_all(diff(Path::new("<stdin>"), &text, &formatted).as_bytes());
            ExitCode::from(1)
        }
        Ok(formatted) => {
            let _ = std::io::stdout().write_all(formatted.as_bytes());
            ExitCode::SUCCESS
        }
        Err(error) => {
            // The input goes back unchanged, so a pipe never loses text.
            let _ = std::io::stdout().write_all(text.as_bytes());
            report(Path::new("<stdin>"), &text, &error, config);
            ExitCode::from(1)
        }
    }
}

fn report(file: &Path, text: &str, error: &FormatError, config: RenderConfig) {
    let mut stderr = std::io::stderr();
    match error {
        FormatError::Syntax(diagnostics) => {
            let mut sources = SourceMap::new();
            let id = sources.add(file.to_path_buf(), text);
            // The snippets of syntax errors may show a secret on or near
            // their lines: the secret-literal errors go with them, so that
            // their spans are masked as `check` masks them.
            let mut all = diagnostics.clone();
            all.extend(secret_diagnostics(text).into_iter().map(|mut d| {
                d.primary.span.file = id;
                d.labels.clear();
                d
            }));
            sovereign_diagnostics::sort(&mut all);
            let _ = write!(stderr, "{}", render(&all, &sources, Format::Human, config));
            let _ = writeln!(stderr, "{}: not formatted: fix the syntax errors first", file.display());
        }
        FormatError::Unstable(_) => {
            let _ = writeln!(
                stderr,
                "{}: not formatted: the result would not mean the same (a formatter bug; please report it)",
                file.display()
            );
        }
    }
}

/// Every `.kdl` file under `path` (or `path` itself), sorted; hidden folders and `target` are skipped.
fn kdl_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(format!("{}: no such file or folder", path.display()));
    }
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(path).sort_by_file_name().into_iter().filter_entry(|e| {
        let name = e.file_name().to_string_lossy();
        e.depth() == 0 || !(name.starts_with('.') || name == "target")
    });
    for entry in walker {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "kdl") {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}

/// Writes through a temporary file and a rename: an interrupted run
/// leaves either the old or the new file, never half of one.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    sovereign::files::replace(path, text.as_bytes())
}

/// A unified diff of one file, with every secret written in clear masked
/// as `check` masks it: a CI log of `fmt --check` must not show a token.
fn diff(path: &Path, before: &str, after: &str) -> String {
    let name = sovereign_diagnostics::printable(&path.display().to_string()).into_owned();
    let mut text = similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string();
    for secret in secret_literals(before) {
        text = text.replace(&secret, &"*".repeat(secret.chars().count()));
    }
    // The diff shows spec text, which may hold escape sequences.
    text.lines().map(|line| format!("{}\n", sovereign_diagnostics::printable(line))).collect()
}

/// The diagnostics `check` would redact in `text` checked on its own:
/// secrets written where a secret's name belongs (its imports are not read,
/// so a name declared elsewhere is masked too: better one mask too many).
fn secret_diagnostics(text: &str) -> Vec<sovereign_diagnostics::Diagnostic> {
    // Read once per run, not once per file reformatted.
    let checked = sovereign_check::check(
        Path::new("fmt.kdl"),
        text.as_bytes().to_vec(),
        &sovereign_check::EmptyHost,
        crate::check_command::embedded_stdlib(),
    );
    checked.diagnostics.into_iter().filter(|d| d.redact).collect()
}

/// The texts to mask in a diff of `text`: each secret as written, its
/// content, and each line of a multi-line one (a diff shows it line by line).
fn secret_literals(text: &str) -> Vec<String> {
    let mut secrets: Vec<String> = secret_diagnostics(text)
        .iter()
        .filter_map(|d| text.get(d.primary.span.range()))
        .filter(|s| !s.is_empty())
        .flat_map(|s| {
            let inner = s.trim_start_matches('#').trim_matches('"').to_owned();
            let lines: Vec<String> =
                s.lines().map(|l| l.trim().trim_matches('"').to_owned()).filter(|l| l.len() >= 4).collect();
            [s.to_owned(), inner].into_iter().chain(lines)
        })
        .filter(|s| !s.is_empty())
        .collect();
    // Longest first, so a literal is masked whole before any part of it.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}
