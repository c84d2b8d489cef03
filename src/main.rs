//! The `sovereign` binary: command line, file access and output.
//!
//! Commands are thin: they read files through [`host::DiskHost`], call the
//! pure compiler, and render its diagnostics. Exit codes: 0 no errors,
//! 1 errors in the spec (or warnings with `--deny-warnings`), 2 usage or IO
//! errors.

mod analyze_command;
mod apply_command;
mod build_command;
mod build_writer;
mod bundle_command;
mod check_command;
mod discover;
mod fmt_command;
mod gate_check;
mod graph_command;
mod host;
mod lsp;
mod plan_command;
mod progress;
mod reach;
mod refusals;
mod shell_command;
mod telemetry;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};

/// mimalloc instead of glibc's allocator: a large spec makes hundreds of
/// thousands of small allocations, and glibc's consolidation of freed
/// chunks grew faster than the spec (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A compiler for sovereign AI fabrics.
#[derive(Parser, Debug)]
#[command(name = "sovereign", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How logs are written when `RUST_LOG` asks for them (docs/operations.md).
    #[arg(long, global = true, value_enum, default_value_t = telemetry::LogFormat::Human)]
    log_format: telemetry::LogFormat,
}

/// How `build --site` prints a site's objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SiteFormat {
    Yaml,
    Json,
}

#[derive(Subcommand, Debug)]
enum BundleCommand {
    /// Check a device bundle (an OCI image layout folder): every blob's digest and size, and the
    /// ed25519 signature over its index with this public key. Exits 1 on any mismatch.
    Verify {
        /// The bundle's folder (`DIR/targets/npu/<site>/<fleet>/<edge>` of a build).
        dir: PathBuf,
        /// The public key, PEM (`openssl pkey -in key.pem -pubout`).
        #[arg(long, value_name = "PUB")]
        key: PathBuf,
    },
    /// Write a device bundle (an OCI image layout folder) to one tar file, for a site with no
    /// network: `skopeo copy oci-archive:FILE:bundle …` reads it. Every blob is checked first.
    Export {
        /// The bundle's folder (`DIR/targets/npu/<site>/<fleet>/<edge>` of a build).
        dir: PathBuf,
        /// The tar to write (replaced atomically).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a spec: syntax, schema, names, references, cycles.
    Check(CheckArgs),
    /// Show where every serve is placed, how devices fit, which data flows where, and the waves.
    Analyze(AnalyzeArgs),
    /// Draw the resource graph: Graphviz DOT, Mermaid, JSON, or SVG (with Graphviz installed).
    Graph(GraphArgs),
    /// Write what the fabric becomes: Kubernetes objects per site, with an index (docs/build.md).
    Build(BuildArgs),
    /// Show what apply would change: the build diffed against the state (no cluster needed; docs/apply.md).
    Plan(PlanArgs),
    /// Apply a spec or a saved plan: Kubernetes objects, Temporal namespaces and schedules, Qdrant
    /// collections, device bundles to registries (docs/apply.md).
    Apply(ApplyArgs),
    /// Delete everything the fabric's state records, in reverse dependency order.
    Destroy(DestroyArgs),
    /// Free the state's lock left by a run that is gone (`LOCK_ID` is in the error that names the holder).
    Unlock(UnlockArgs),
    /// Device bundles: `bundle verify DIR --key PUB` checks every digest and the signature;
    /// `bundle export DIR -o FILE` writes one tar for an air-gapped site.
    Bundle {
        #[command(subcommand)]
        command: BundleCommand,
    },
    /// Format spec files in the one canonical style (comments kept, meaning unchanged).
    Fmt(FmtArgs),
    /// Run the language server (LSP 3.17 over stdio) for editors.
    Lsp(LspArgs),
    /// Print the documentation of a diagnostic code (such as SOV2001 or unknown-node).
    Explain {
        /// The code or its name.
        code: String,
    },
    /// Print the `node` declaration of this machine (its GPUs from `nvidia-smi`, mapped to the
    /// catalog, CPUs and memory), or with --kubeconfig a cluster's `site` (docs/operations.md).
    Discover(discover::DiscoverArgs),
    /// Write a starting fabric that checks clean (never over an existing file).
    Init(shell_command::InitArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or PowerShell.
    Completions { shell: clap_complete::Shell },
    /// Print the man page, or write one page per command to a folder.
    Man {
        /// Write `sovereign.1` and `sovereign-COMMAND.1` here instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
struct LspArgs {
    /// Use the schema and catalog in DIR (`schema/*.kdl`, `catalog/*.kdl`) instead of the built-in stdlib, as `check --stdlib` does.
    #[arg(long, value_name = "DIR")]
    stdlib: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// The spec's root file, or a folder holding `fabric.kdl`.
    #[arg(default_value = "fabric.kdl")]
    spec: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    format: OutputFormat,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    deny_warnings: bool,
    /// Use the stdlib (schema and catalogs) in this folder instead of the embedded one.
    #[arg(long, value_name = "DIR")]
    stdlib: Option<PathBuf>,
    /// When to colour human output (never when NO_COLOR is set).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(clap::Args, Debug)]
struct AnalyzeArgs {
    /// The spec's root file, or a folder holding `fabric.kdl`.
    #[arg(default_value = "fabric.kdl")]
    spec: PathBuf,
    /// Print the analysis as versioned JSON (docs/analyze-json.md) instead of tables.
    #[arg(long)]
    json: bool,
    /// Use the stdlib (schema and catalogs) in this folder instead of the embedded one.
    #[arg(long, value_name = "DIR")]
    stdlib: Option<PathBuf>,
    /// When to colour diagnostics (never when NO_COLOR is set).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(clap::Args, Debug)]
struct BuildArgs {
    /// The spec's root file, or a folder holding `fabric.kdl`.
    #[arg(default_value = "fabric.kdl")]
    spec: PathBuf,
    /// The folder to write (replaced whole, atomically).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: Option<PathBuf>,
    /// Print one site's Kubernetes objects on stdout instead (a YAML stream, for `kubectl apply -f -`).
    #[arg(long, value_name = "NAME", conflicts_with = "output")]
    site: Option<String>,
    /// With --site: `yaml` (a stream, the default) or `json` (an array).
    #[arg(long, value_enum, requires = "site", default_value_t = SiteFormat::Yaml)]
    format: SiteFormat,
    /// With --site: the same as `--format json`.
    #[arg(long, requires = "site")]
    json: bool,
    /// Replace DIR even when it was not written by `sovereign build`.
    #[arg(long)]
    force: bool,
    /// Write what can be built and list, as warnings, what cannot yet (without it, that is an error).
    #[arg(long)]
    partial: bool,
    /// Use the stdlib (schema and catalogs) in this folder instead of the embedded one.
    #[arg(long, value_name = "DIR")]
    stdlib: Option<PathBuf>,
    /// When to colour diagnostics (never when NO_COLOR is set).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(clap::Args, Debug)]
struct PlanArgs {
    /// The spec's root file, or a folder holding `fabric.kdl`.
    #[arg(default_value = "fabric.kdl")]
    spec: PathBuf,
    /// The state file, instead of the spec's `state path=` or `.sovereign/state.json` beside the spec.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Save the plan to FILE, for `sovereign apply FILE` (which refuses it once stale).
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print the plan as versioned JSON (docs/apply.md) instead of text.
    #[arg(long)]
    json: bool,
    /// Exit 0 when nothing would change, 2 when something would, 1 on an error.
    #[arg(long)]
    detailed_exitcode: bool,
    /// Delete what holds data (volume claims, vector collections, Temporal namespaces) when it is no longer declared.
    #[arg(long)]
    prune_data: bool,
    /// Plan what can be built and list, as warnings, what cannot yet (without it, that is an error).
    #[arg(long)]
    partial: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Use the stdlib (schema and catalogs) in this folder instead of the embedded one.
    #[arg(long, value_name = "DIR")]
    stdlib: Option<PathBuf>,
    /// When to colour diagnostics (never when NO_COLOR is set).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

/// A finite, non-negative number of seconds (or factor), at most a year.
fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && (0.0..=31_536_000.0).contains(&value) => Ok(value),
        Ok(_) => Err("must be a number from 0 to 31536000".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// How the clusters are reached.
#[derive(clap::Args, Debug)]
struct ClusterArgs {
    /// Also read the live objects: drift of the fields sovereign owns, objects deleted outside it, and labelled objects no state knows (pruned).
    #[arg(long)]
    refresh: bool,
    /// The kubeconfig (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Use this kubeconfig context for every site, instead of each site's `cluster context=`.
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Seconds before one API request is given up and retried.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = seconds)]
    request_timeout: f64,
}

#[derive(clap::Args, Debug)]
struct ApplyArgs {
    /// A spec (its root file or folder), or a plan saved with `plan -o FILE`.
    #[arg(default_value = "fabric.kdl", value_name = "SPEC|PLAN")]
    input: PathBuf,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Debug)]
struct DestroyArgs {
    /// The spec's root file, or a folder holding `fabric.kdl`.
    #[arg(default_value = "fabric.kdl")]
    spec: PathBuf,
    #[command(flatten)]
    run: RunArgs,
}

/// What `apply` and `destroy` share.
#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The state file (for a saved plan: instead of the one the plan names).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Go on without asking (required when stdin is not a terminal).
    #[arg(long)]
    auto_approve: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Only the changes for these targets (`k3s` includes the Helm values its HelmCharts carry).
    #[arg(long, value_name = "TARGET")]
    target: Vec<String>,
    /// Seconds to wait for another run's lock before failing with its holder's name.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = seconds)]
    lock_timeout: f64,
    /// Steps in flight at once, across all clusters.
    #[arg(long, value_name = "N", default_value_t = 32)]
    concurrency: usize,
    /// Steps in flight at once on one cluster.
    #[arg(long, value_name = "N", default_value_t = 16)]
    cluster_concurrency: usize,
    /// Multiplies every readiness timeout (docs/apply.md lists them).
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0, value_parser = seconds)]
    timeout_scale: f64,
    /// Take over fields another field manager owns instead of failing.
    #[arg(long)]
    force_conflicts: bool,
    /// Update the serves this eval gates even though its latest run missed a threshold (recorded in the state).
    #[arg(long, value_name = "EVAL")]
    ignore_gate: Vec<String>,
    /// Also delete (or replace) what holds data: PVCs, vector store collections, Temporal namespaces.
    #[arg(long)]
    prune_data: bool,
    /// Apply what can be built and list, as warnings, what cannot yet (without it, that is an error).
    #[arg(long)]
    partial: bool,
    /// Stream events as JSON lines on stdout.
    #[arg(long)]
    json: bool,
    /// Use the stdlib (schema and catalogs) in this folder instead of the embedded one.
    #[arg(long, value_name = "DIR")]
    stdlib: Option<PathBuf>,
    /// When to colour diagnostics (never when NO_COLOR is set).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(clap::Args, Debug)]
struct UnlockArgs {
    /// The lock's id, as the error that names its holder gives it.
    lock_id: String,
    /// The spec whose state is locked (its root file or folder).
    #[arg(default_value = "fabric.kdl")]
    spec: PathBuf,
    /// The state file, instead of the spec's.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Use the stdlib (schema and catalogs) in this folder instead of the embedded one.
    #[arg(long, value_name = "DIR")]
    stdlib: Option<PathBuf>,
    /// When to colour diagnostics (never when NO_COLOR is set).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(clap::Args, Debug)]
struct GraphArgs {
    /// The spec's root file, or a folder holding `fabric.kdl`.
    #[arg(default_value = "fabric.kdl")]
    spec: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    format: GraphFormat,
    /// Use the stdlib (schema and catalogs) in this folder instead of the embedded one.
    #[arg(long, value_name = "DIR")]
    stdlib: Option<PathBuf>,
    /// When to colour diagnostics (never when NO_COLOR is set).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(clap::Args, Debug)]
struct FmtArgs {
    /// Files or folders (every `.kdl` file under them); `-` formats standard input to standard output.
    paths: Vec<PathBuf>,
    /// Change nothing: print a diff of what would change and exit 1 if anything would.
    #[arg(long)]
    check: bool,
    /// When to colour diagnostics (never when NO_COLOR is set).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum GraphFormat {
    /// Graphviz DOT.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
    /// Nodes and edges as JSON.
    Json,
    /// SVG, rendered by Graphviz's `dot` (must be on the PATH).
    Svg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OutputFormat {
    /// miette's graphical report, on stderr.
    Human,
    /// Versioned JSON (docs/json-output.md), on stdout.
    Json,
    /// SARIF 2.1.0, on stdout.
    Sarif,
    /// GitHub Actions workflow commands, on stdout.
    Github,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

// Option numbers from mimalloc.h (v2, the version libmimalloc-sys builds).
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes mimalloc commit memory as it is touched and return freed memory at
/// once (`MIMALLOC_ARENA_EAGER_COMMIT=0`, `MIMALLOC_PURGE_DELAY=0`): its
/// defaults kept 2-3× more resident than needed for a one-shot compiler.
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: mi_option_set only stores a number in mimalloc's option table;
    // this runs first in main, before any other thread exists.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

/// `build` frees and reuses a batch's memory over and over: returning it
/// at once made every batch fault its pages in again (a sixth of a build's
/// time). mimalloc's default delay (10 ms) keeps a batch's pages for the
/// next one and still returns what a build stops using.
#[allow(unsafe_code)]
pub(crate) fn tune_allocator_for_build() {
    // SAFETY: as above; called before `build` starts any thread.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 10);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    // The long version reads the catalogs: only when it is asked for.
    let asks_version = std::env::args().skip(1).any(|arg| arg == "--version" || arg == "-V");
    let mut command = Cli::command();
    if asks_version {
        let version = shell_command::long_version();
        command = command.version(version.clone()).long_version(version);
    }
    let parsed = command.try_get_matches().and_then(|matches| {
        let name = matches.subcommand_name().unwrap_or_default().to_owned();
        Cli::from_arg_matches(&matches).map(|cli| (cli, name))
    });
    let (cli, name) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    // Installed only when the environment asks for traces or logs.
    let telemetry = telemetry::Telemetry::start(cli.log_format);
    let code = {
        let _root = tracing::info_span!("sovereign", sovereign.command = name.as_str()).entered();
        run(cli.command)
    };
    drop(telemetry);
    code
}

fn run(command: Command) -> ExitCode {
    match command {
        Command::Check(args) => check_command::run(&args),
        Command::Analyze(args) => analyze_command::run(&args),
        Command::Graph(args) => graph_command::run(&args),
        Command::Build(args) => build_command::run(&args),
        Command::Plan(args) => plan_command::run(&args),
        Command::Apply(args) => apply_command::apply(&args),
        Command::Destroy(args) => apply_command::destroy(&args),
        Command::Unlock(args) => plan_command::unlock(&args),
        Command::Bundle { command: BundleCommand::Verify { dir, key } } => bundle_command::verify(&dir, &key),
        Command::Bundle { command: BundleCommand::Export { dir, output } } => bundle_command::export(&dir, &output),
        Command::Fmt(args) => fmt_command::run(&args),
        Command::Lsp(args) => lsp::run(args.stdlib.as_deref()),
        Command::Explain { code } => explain(&code),
        Command::Discover(args) => discover::run(&args),
        Command::Init(args) => shell_command::init(&args),
        Command::Completions { shell } => shell_command::completions(shell, Cli::command()),
        Command::Man { dir } => shell_command::man(dir.as_deref(), Cli::command()),
    }
}

fn explain(query: &str) -> ExitCode {
    match sovereign_diagnostics::codes::lookup(query) {
        Some(code) => {
            let _ = std::io::stdout().write_all(code.doc.as_bytes());
            ExitCode::SUCCESS
        }
        None => {
            let _ = writeln!(
                std::io::stderr(),
                "error: unknown diagnostic code `{query}`; codes look like SOV2001 (see docs/diagnostics/)"
            );
            ExitCode::from(2)
        }
    }
}
