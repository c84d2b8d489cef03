//! `sovereign check`.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sovereign_analyze::Compilation;
use sovereign_check::{FileKind, Host as _, MAX_FILE_BYTES, Stdlib};
use sovereign_diagnostics::{Diagnostic, Format, RenderConfig, Severity, render};

use crate::host::DiskHost;
use crate::{CheckArgs, ColorChoice, OutputFormat};

/// Reads the spec at `spec` (a file, or a folder holding `fabric.kdl`),
/// checks it and analyzes it, keeping what `keep` says of the IR. `Err` is
/// the exit code of a usage or IO error, already reported on stderr.
pub(crate) fn load(
    spec: &Path,
    stdlib: Option<&Path>,
    config: RenderConfig,
    keep: sovereign_analyze::Keep,
) -> Result<Compilation, ExitCode> {
    let mut stderr = std::io::stderr();
    let root = resolve_root(spec);
    // The root is refused like an import when it is not a regular file: a
    // `fabric.kdl` in a pull request may be a symlink to `/proc/self/environ`.
    if let FileKind::Special(what) = DiskHost.kind(&root) {
        let _ = writeln!(stderr, "error: {} is {what}, not a spec file; specs are regular .kdl files", root.display());
        return Err(ExitCode::from(2));
    }
    // Nor may it be a link out of the folder it is named in (to a token
    // file, say): its lines would be printed as syntax errors.
    let folder = root.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !DiskHost.canonical(&root).starts_with(DiskHost.canonical(folder)) {
        let _ = writeln!(
            stderr,
            "error: {} is a link out of its folder; check the spec where it is, or copy it here",
            root.display()
        );
        return Err(ExitCode::from(2));
    }
    let bytes = match DiskHost.read(&root) {
        Ok(bytes) if bytes.len() > MAX_FILE_BYTES => {
            let _ = writeln!(stderr, "error: {} is larger than 1 GiB", root.display());
            return Err(ExitCode::from(2));
        }
        Ok(bytes) => bytes,
        Err(error) => {
            let _ = writeln!(stderr, "error: cannot read {}: {error}", root.display());
            return Err(ExitCode::from(2));
        }
    };
    let read;
    let stdlib = match stdlib {
        Some(dir) => match read_stdlib(dir) {
            Ok((stdlib, diagnostics)) if diagnostics.iter().any(Diagnostic::is_error) => {
                let _ = writeln!(stderr, "error: the stdlib is invalid:");
                let _ = write!(stderr, "{}", render(&diagnostics, &stdlib.sources, Format::Human, config));
                return Err(ExitCode::from(2));
            }
            Ok((stdlib, _)) => {
                read = stdlib;
                &read
            }
            Err(message) => {
                let _ = writeln!(stderr, "error: {message}");
                return Err(ExitCode::from(2));
            }
        },
        None => embedded_stdlib(),
    };
    Ok(sovereign_analyze::compile_keeping(stdlib, &root, bytes, &DiskHost, keep))
}

/// The embedded stdlib, read once per process (the tests keep it valid).
pub(crate) fn embedded_stdlib() -> &'static Stdlib {
    static STDLIB: std::sync::OnceLock<Stdlib> = std::sync::OnceLock::new();
    STDLIB.get_or_init(|| Stdlib::embedded().0)
}

pub(crate) fn run(args: &CheckArgs) -> ExitCode {
    let mut stderr = std::io::stderr();
    let config = render_config(args.color);
    let loaded = match load(&args.spec, args.stdlib.as_deref(), config, sovereign_analyze::Keep::Ir) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let checked = &loaded;
    let diagnostics = &checked.diagnostics;
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = diagnostics.len() - errors;
    let format = match args.format {
        OutputFormat::Human => Format::Human,
        OutputFormat::Json => Format::Json,
        OutputFormat::Sarif => Format::Sarif,
        OutputFormat::Github => Format::Github,
    };
    let output = render(diagnostics, &checked.sources, format, config);
    if format == Format::Human {
        let _ = write!(stderr, "{output}");
        let files = checked.sources.spec_files().count();
        let declarations = checked.fabric.names.len();
        let _ = writeln!(stderr, "{}", summary(errors, warnings, files, declarations));
    } else {
        let _ = std::io::stdout().write_all(output.as_bytes());
    }
    let failed = errors > 0 || (args.deny_warnings && warnings > 0);
    // The process is about to exit: freeing a large spec's IR item by item
    // would cost a sixth of the run, and the OS reclaims it anyway.
    std::mem::forget(loaded);
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn summary(errors: usize, warnings: usize, files: usize, declarations: usize) -> String {
    let plural = |n: usize, word: &str| if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") };
    if errors == 0 && warnings == 0 {
        format!("ok: {} and {} checked, no problems", plural(files, "file"), plural(declarations, "declaration"))
    } else {
        format!("{} and {} in {}", plural(errors, "error"), plural(warnings, "warning"), plural(files, "file"))
    }
}

/// A folder stands for its `fabric.kdl`.
fn resolve_root(spec: &Path) -> PathBuf {
    if spec.is_dir() { spec.join("fabric.kdl") } else { spec.to_path_buf() }
}

pub(crate) fn render_config(choice: ColorChoice) -> RenderConfig {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = !no_color
        && match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => std::io::stderr().is_terminal(),
        };
    let width = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(100);
    RenderConfig { color, width }
}

/// Reads `DIR/schema/*.kdl` and `DIR/catalog/*.kdl` (`--stdlib DIR`).
pub(crate) fn read_stdlib(dir: &Path) -> Result<(Stdlib, Vec<Diagnostic>), String> {
    let read_folder = |name: &str| -> Result<Vec<(PathBuf, String)>, String> {
        let folder = dir.join(name);
        let files = DiskHost.kdl_files(&folder).map_err(|e| format!("cannot read {}: {e}", folder.display()))?;
        if files.is_empty() {
            return Err(format!("{} has no .kdl files", folder.display()));
        }
        files
            .into_iter()
            .map(|path| {
                let text =
                    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Ok((path, text))
            })
            .collect()
    };
    Ok(Stdlib::from_files(read_folder("schema")?, read_folder("catalog")?))
}
