//! What fits `sovereign` into a person's shell: completions and man pages
//! generated from the CLI definition, the long `--version`, and `init`,
//! which writes a starting fabric that checks clean.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `sovereign completions SHELL`: the completion script on stdout.
pub(crate) fn completions(shell: clap_complete::Shell, mut command: clap::Command) -> ExitCode {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "sovereign", &mut out);
    write_out(&out)
}

/// `sovereign man`: the page of `sovereign` on stdout, or with `--dir`
/// one page per command (`sovereign.1`, `sovereign-apply.1`, …), each
/// written atomically.
pub(crate) fn man(dir: Option<&Path>, command: clap::Command) -> ExitCode {
    let Some(dir) = dir else {
        let mut out = Vec::new();
        if let Err(e) = clap_mangen::Man::new(command).render(&mut out) {
            return fail(&format!("cannot render the man page: {e}"));
        }
        return write_out(&out);
    };
    let mut pages = vec![("sovereign".to_owned(), command.clone())];
    for sub in command.get_subcommands() {
        let name = format!("sovereign-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, page) in pages {
        let mut out = Vec::new();
        if let Err(e) = clap_mangen::Man::new(page).render(&mut out) {
            return fail(&format!("cannot render the man page of {name}: {e}"));
        }
        let path = dir.join(format!("{name}.1"));
        if let Err(e) = sovereign::files::replace_readable(&path, &out) {
            return fail(&format!("cannot write {}: {e}", path.display()));
        }
    }
    let _ = writeln!(std::io::stderr(), "wrote the man pages to {}", dir.display());
    ExitCode::SUCCESS
}

/// The version, the commit and the catalogs' dates.
pub(crate) fn long_version() -> String {
    let stdlib = crate::check_command::embedded_stdlib();
    let checked: Vec<String> =
        stdlib.schema.catalog.checked.iter().map(|(table, on)| format!("  {table}: {on}")).collect();
    format!(
        "{} (commit {})\ncatalogs checked against their sources:\n{}",
        env!("CARGO_PKG_VERSION"),
        env!("SOVEREIGN_COMMIT"),
        checked.join("\n")
    )
}

/// The arguments of `init`.
#[derive(clap::Args, Debug)]
pub(crate) struct InitArgs {
    /// The folder to write `fabric.kdl` in (made if missing; an existing
    /// `fabric.kdl` is never overwritten).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The fabric's name (default: the folder's name).
    #[arg(long)]
    name: Option<String>,
    /// The first site's tier.
    #[arg(long, value_enum, default_value_t = Tier::Server)]
    tier: Tier,
    /// The site's region, from the region catalog (`sovereign explain` lists none; see docs/language.md).
    #[arg(long, default_value = "eu-central")]
    region: String,
    /// The GPU model of the site's server, from the GPU catalog (such as `h100-80gb`).
    #[arg(long)]
    gpu: Option<String>,
    /// How many GPUs it has.
    #[arg(long, default_value_t = 1)]
    gpus: u32,
    /// Declare this machine as the site's server, as `sovereign discover` finds it.
    #[arg(long, conflicts_with = "gpu")]
    discover: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Tier {
    Server,
    Cloud,
    Device,
}

/// `sovereign init [DIR]`.
pub(crate) fn init(args: &InitArgs) -> ExitCode {
    let path = args.dir.join("fabric.kdl");
    if path.exists() {
        return fail(&format!("{} exists: init never overwrites a file", path.display()));
    }
    // The folder's name, also for one not made yet.
    let folder = std::fs::canonicalize(&args.dir)
        .ok()
        .or_else(|| std::path::absolute(&args.dir).ok())
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
    let wanted = args.name.clone().or(folder).unwrap_or_else(|| "fabric".into());
    let Some(name) = sovereign_ir::values::suggest_name(&wanted) else {
        return fail(&format!("`{wanted}` cannot be a fabric name: pass --name"));
    };
    let stdlib = crate::check_command::embedded_stdlib();
    let catalog = &stdlib.schema.catalog;
    let Some(region) = catalog.regions.get(&args.region) else {
        let known: Vec<&str> = catalog.regions.keys().map(String::as_str).collect();
        return fail(&format!("`{}` is not a region of the catalog; one of: {}", args.region, known.join(", ")));
    };
    if let Some(gpu) = &args.gpu
        && !catalog.gpus.contains_key(gpu)
    {
        let known: Vec<&str> = catalog.gpus.keys().map(String::as_str).collect();
        return fail(&format!("`{gpu}` is not a GPU of the catalog; one of: {}", known.join(", ")));
    }
    let node = if args.discover {
        match crate::discover::this_machine() {
            Ok(found) => found,
            Err(message) => return fail(&message),
        }
    } else {
        let gpu = args.gpu.as_ref().map(|gpu| format!(" gpu=\"{gpu}\" gpus={}", args.gpus)).unwrap_or_default();
        format!("node \"server-1\"{gpu}\n")
    };
    let text = fabric(&name, args.tier, &args.region, &region.jurisdiction, &node);
    // Whole or not at all, and a file that appeared since the check above is not overwritten either.
    if let Err(e) = sovereign::files::create_new(&path, text.as_bytes()) {
        return fail(&format!("cannot write {}: {e}", path.display()));
    }
    let _ = writeln!(std::io::stderr(), "wrote {}; next: sovereign check {}", path.display(), args.dir.display());
    ExitCode::SUCCESS
}

/// A starting fabric: one site of `tier` (its server from `node` on a
/// server site), a state beside the spec, and what to add next.
fn fabric(name: &str, tier: Tier, region: &str, jurisdiction: &str, node: &str) -> String {
    let site = match tier {
        Tier::Server => {
            let node: String = node.lines().map(|line| format!("    {line}\n")).collect();
            format!(
                "site \"main\" tier=\"server\" region=\"{region}\" {{\n    // The kubeconfig context of the site's cluster (bootstrap/install-k3s.sh writes one).\n    cluster kind=\"k3s\" context=\"default\"\n{node}}}\n"
            )
        }
        Tier::Cloud => format!(
            "site \"burst\" tier=\"cloud\" region=\"{region}\" provider=\"gke\" {{\n    cluster kind=\"gke\" context=\"burst\"\n    pool \"gpus\" accelerator=\"l4\" gpus=1 min=0 max=2\n}}\n"
        ),
        Tier::Device => format!(
            "site \"fleet\" tier=\"device\" region=\"{region}\" {{\n    fleet \"handhelds\" soc=\"snapdragon-8-gen-3\" count=10 memory=\"12GiB\"\n}}\n"
        ),
    };
    format!(
        "// Written by `sovereign init`. Check it: sovereign check .\n// Next: declare a `model` and a `serve` (docs/language.md), then `sovereign plan .`.\n\nfabric \"{name}\" {{\n    // Data stays in this jurisdiction unless a policy says otherwise.\n    residency \"{jurisdiction}\"\n    // The state lives beside this spec, in .sovereign/state.json.\n    state backend=\"local\"\n}}\n\n{site}"
    )
}

fn write_out(bytes: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "error: {message}");
    ExitCode::from(1)
}
