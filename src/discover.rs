//! `sovereign discover`: the `node` declaration of the machine it runs on,
//! from what `nvidia-smi` reports (or captures of it given as files), the
//! GPUs mapped to the catalog by the product name `nvidia-smi` prints.
//!
//! Facts: `nvidia-smi -q -x` is one `<gpu>` element per GPU with its
//! `<product_name>`, `<mig_mode><current_mig>` (`Enabled`/`Disabled`)
//! and `<fb_memory_usage><total>` (`81559 MiB`); `nvidia-smi mig -lgip`
//! prints one row per GPU-instance profile (`| 0 MIG 1g.10gb 19 7/7 9.75
//! No 16 … |`), also while MIG is disabled. Checked against the captures
//! in `compiler/catalog/tests/fixtures/` (driver 580.159.04).
//!
//! Parsing and rendering are pure; `run` reads the files, runs the tools
//! and reads `/proc`.

mod cluster;
mod hardware;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use sovereign_catalog::Catalog;

/// The first line of a machine's declaration (a cluster's site has its own).
const MACHINE_HEADER: &str = "// Written by `sovereign discover`.";

/// One GPU as `nvidia-smi -q -x` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SeenGpu {
    pub(crate) product: String,
    pub(crate) memory_mib: u64,
    pub(crate) mig_enabled: bool,
}

/// A GPU-instance profile row of `nvidia-smi mig -lgip`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SeenProfile {
    pub(crate) name: String,
    pub(crate) id: u32,
    pub(crate) instances: u32,
    pub(crate) memory_centigib: u64,
    pub(crate) sm: u32,
}

/// The machine, as discovered.
#[derive(Clone, Debug, Default)]
pub(crate) struct Machine {
    pub(crate) name: String,
    pub(crate) cpus: Option<u32>,
    pub(crate) memory_gib: Option<u64>,
    pub(crate) gpus: Vec<SeenGpu>,
    pub(crate) profiles: Vec<SeenProfile>,
}

/// The text of every `<tag>…</tag>` in `xml`, entities decoded.
fn elements<'x>(xml: &'x str, tag: &str) -> Vec<&'x str> {
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find(&open) {
        let after = &rest[at + open.len()..];
        // `<gpu id="…">` or `<total>`, not `<total_energy…>`.
        if !after.starts_with(['>', ' ']) {
            rest = after;
            continue;
        }
        let Some(start) = after.find('>') else { break };
        let body = &after[start + 1..];
        let Some(end) = body.find(&close) else { break };
        found.push(&body[..end]);
        rest = &body[end + close.len()..];
    }
    found
}

fn decode(text: &str) -> String {
    text.trim()
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The GPUs of `nvidia-smi -q -x`; `Err` when it is not that document.
pub(crate) fn parse_smi_xml(xml: &str) -> Result<Vec<SeenGpu>, String> {
    if !xml.contains("<nvidia_smi_log") {
        return Err("not the output of `nvidia-smi -q -x` (no <nvidia_smi_log>)".into());
    }
    elements(xml, "gpu")
        .into_iter()
        .enumerate()
        .map(|(index, gpu)| {
            let first = |tag: &str| elements(gpu, tag).first().map(|text| decode(text));
            let product = first("product_name").ok_or_else(|| format!("GPU {index} has no <product_name>"))?;
            let memory = elements(gpu, "fb_memory_usage")
                .first()
                .and_then(|usage| elements(usage, "total").first().map(|t| decode(t)))
                .ok_or_else(|| format!("GPU {index} has no <fb_memory_usage><total>"))?;
            let memory_mib = memory
                .strip_suffix(" MiB")
                .and_then(|m| m.trim().parse().ok())
                .ok_or_else(|| format!("GPU {index}: memory `{memory}` is not `N MiB`"))?;
            let mig_enabled = elements(gpu, "mig_mode")
                .first()
                .and_then(|mode| elements(mode, "current_mig").first().map(|m| decode(m)))
                .is_some_and(|m| m.eq_ignore_ascii_case("enabled"));
            Ok(SeenGpu { product, memory_mib, mig_enabled })
        })
        .collect()
}

/// The profile rows of `nvidia-smi mig -lgip` (those of GPU 0; every GPU
/// of one model offers the same).
pub(crate) fn parse_lgip(text: &str) -> Vec<SeenProfile> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.trim_matches(|c| c == '|' || c == ' ').split_whitespace().collect();
            if fields.get(1) != Some(&"MIG") || fields.first() != Some(&"0") {
                return None;
            }
            let (_, total) = fields.get(4)?.split_once('/')?;
            let (whole, fraction) = fields.get(5)?.split_once('.')?;
            Some(SeenProfile {
                name: (*fields.get(2)?).to_owned(),
                id: fields.get(3)?.parse().ok()?,
                instances: total.parse().ok()?,
                memory_centigib: whole.parse::<u64>().ok()? * 100 + fraction.parse::<u64>().ok()?,
                sm: fields.get(7)?.parse().ok()?,
            })
        })
        .collect()
}

/// What discovery found: the declaration to write, and what the user
/// must know (an unknown GPU, a catalog that differs from the driver).
pub(crate) struct Discovered {
    pub(crate) kdl: String,
    pub(crate) problems: Vec<String>,
}

/// The `node` declaration of `machine`, GPUs mapped through `catalog`.
pub(crate) fn render(machine: &Machine, catalog: &Catalog) -> Discovered {
    let mut kdl = String::new();
    let mut problems = Vec::new();
    let mut props = String::new();
    let mut models: BTreeMap<&str, Vec<&SeenGpu>> = BTreeMap::new();
    for gpu in &machine.gpus {
        models.entry(&gpu.product).or_default().push(gpu);
    }
    if models.len() > 1 {
        problems.push(format!(
            "this machine has {} GPU models ({}); a node declares one: declare the machine as one node per model",
            models.len(),
            models.keys().copied().collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some((product, gpus)) = models.iter().next() {
        let mig = gpus.iter().all(|g| g.mig_enabled);
        let memory = gpus[0].memory_mib;
        let known = catalog.gpus.values().find(|g| g.product == *product);
        let _ = writeln!(
            kdl,
            "// {} × {product}, {memory} MiB each, MIG {}.",
            gpus.len(),
            if mig { "enabled" } else { "disabled" }
        );
        if !machine.profiles.is_empty() {
            let names: Vec<&str> = machine.profiles.iter().map(|p| p.name.as_str()).collect();
            let _ = writeln!(kdl, "// MIG profiles the driver offers: {}.", names.join(" "));
        }
        match known {
            Some(entry) => {
                let _ = write!(props, " gpu=\"{}\" gpus={}", entry.name, gpus.len());
                if mig {
                    props.push_str(" mig=#true");
                }
                if entry.memory_mib != memory {
                    problems.push(format!(
                        "the catalog's {} has {} MiB, and the driver reports {memory} MiB",
                        entry.name, entry.memory_mib
                    ));
                }
                problems.extend(profile_differences(&entry.name, &entry.mig, &machine.profiles));
            }
            None => problems.push(unknown_gpu(product, memory, &machine.profiles)),
        }
    } else {
        let _ = writeln!(kdl, "// No NVIDIA GPU was found.");
    }
    if let Some(cpus) = machine.cpus {
        let _ = write!(props, " cpu={cpus}");
    }
    if let Some(gib) = machine.memory_gib {
        let _ = write!(props, " memory=\"{gib}GiB\"");
    }
    let _ = writeln!(kdl, "node \"{}\"{props}", machine.name);
    Discovered { kdl, problems }
}

/// Where the catalog's profiles of a GPU differ from the driver's.
fn profile_differences(name: &str, ours: &[sovereign_catalog::MigProfile], seen: &[SeenProfile]) -> Vec<String> {
    if seen.is_empty() {
        return Vec::new();
    }
    let mut differences = Vec::new();
    for profile in seen {
        match ours.iter().find(|p| p.name == profile.name) {
            None => differences.push(format!(
                "the driver offers MIG profile {} (id {}) on {name}, which the catalog does not list",
                profile.name, profile.id
            )),
            Some(p)
                if (p.id, p.instances, p.memory_centigib, p.sm)
                    != (profile.id, profile.instances, profile.memory_centigib, profile.sm) =>
            {
                differences.push(format!(
                    "MIG profile {} of {name}: the catalog says id {} ×{} {} GiB {} SMs, the driver id {} ×{} {} GiB {} SMs",
                    profile.name,
                    p.id,
                    p.instances,
                    centigib(p.memory_centigib),
                    p.sm,
                    profile.id,
                    profile.instances,
                    centigib(profile.memory_centigib),
                    profile.sm
                ));
            }
            Some(_) => {}
        }
    }
    for p in ours.iter().filter(|p| !seen.iter().any(|s| s.name == p.name)) {
        differences
            .push(format!("the catalog lists MIG profile {} on {name}, which the driver does not offer", p.name));
    }
    differences
}

fn centigib(value: u64) -> String {
    format!("{}.{:02}", value / 100, value % 100)
}

/// What to add to `stdlib/catalog/gpus.kdl` for a GPU it does not know.
fn unknown_gpu(product: &str, memory_mib: u64, profiles: &[SeenProfile]) -> String {
    let name =
        sovereign_ir::values::suggest_name(product.trim_start_matches("NVIDIA ")).unwrap_or_else(|| "gpu".into());
    let mut entry = format!("gpu \"{name}\" product=\"{product}\" memory-mib={memory_mib}");
    if profiles.is_empty() {
        entry.push('\n');
    } else {
        entry.push_str(" {\n");
        for p in profiles {
            let _ = writeln!(
                entry,
                "    mig \"{}\" id={} instances={} memory-gib={} sm={} size=… starts=\"…\"",
                p.name,
                p.id,
                p.instances,
                centigib(p.memory_centigib),
                p.sm
            );
        }
        entry.push_str("}\n");
    }
    format!(
        "the GPU `{product}` is not in the catalog, so the node declares no GPU; add it to stdlib/catalog/gpus.kdl (sizes and starts from `nvidia-smi mig -lgipp`) and use `--stdlib`:\n{entry}"
    )
}

/// The arguments of `discover`.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct DiscoverArgs {
    /// The node's name (default: this machine's host name).
    #[arg(long)]
    name: Option<String>,
    /// Read `nvidia-smi -q -x` from this file instead of running it.
    #[arg(long, value_name = "FILE")]
    nvidia_smi: Option<std::path::PathBuf>,
    /// Read `nvidia-smi mig -lgip` from this file instead of running it.
    #[arg(long, value_name = "FILE")]
    mig_profiles: Option<std::path::PathBuf>,
    /// CPU cores (default: those of this machine).
    #[arg(long)]
    cpus: Option<u32>,
    /// System memory in GiB (default: this machine's, rounded down).
    #[arg(long, value_name = "GIB")]
    memory_gib: Option<u64>,
    /// Describe a whole cluster instead, as a `site`, from its Node objects and their GPU labels.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<std::path::PathBuf>,
    /// With --kubeconfig: the context (default: the kubeconfig's current one).
    #[arg(long, requires = "kubeconfig")]
    context: Option<String>,
    /// With --kubeconfig: the site's name (default: the context's, made a valid name).
    #[arg(long, requires = "kubeconfig")]
    site: Option<String>,
    /// With --kubeconfig: the site's region, from the region catalog.
    #[arg(long, requires = "kubeconfig", default_value = "eu-central")]
    region: String,
}

pub(crate) fn run(args: &DiscoverArgs) -> ExitCode {
    let mut stderr = std::io::stderr();
    if let Some(kubeconfig) = &args.kubeconfig {
        return run_cluster(args, kubeconfig);
    }
    let machine = match machine(args) {
        Ok(machine) => machine,
        Err(message) => {
            let _ = writeln!(stderr, "error: {message}");
            return ExitCode::from(1);
        }
    };
    let stdlib = crate::check_command::embedded_stdlib();
    let found = render(&machine, &stdlib.schema.catalog);
    let _ = std::io::stdout().write_all(format!("{MACHINE_HEADER}\n{}", found.kdl).as_bytes());
    for problem in &found.problems {
        let _ = writeln!(stderr, "warning: {problem}");
    }
    if found.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// `discover --kubeconfig`: a `site` block with a `node` per Node object.
fn run_cluster(args: &DiscoverArgs, kubeconfig: &std::path::Path) -> ExitCode {
    let mut stderr = std::io::stderr();
    let context = match args.context.clone().or_else(|| current_context(kubeconfig)) {
        Some(context) => context,
        None => {
            let _ = writeln!(stderr, "error: {} names no current context: pass --context", kubeconfig.display());
            return ExitCode::from(2);
        }
    };
    let stdlib = crate::check_command::embedded_stdlib();
    let catalog = &stdlib.schema.catalog;
    if !catalog.regions.contains_key(&args.region) {
        let _ = writeln!(stderr, "error: `{}` is not a region of the catalog (see docs/language.md)", args.region);
        return ExitCode::from(2);
    }
    let nodes = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string()).and_then(
        |runtime| {
            runtime.block_on(async {
                let cluster = sovereign_kubernetes::Cluster::connect(
                    Some(kubeconfig),
                    Some(&context),
                    sovereign_kubernetes::Settings::default(),
                )
                .await
                .map_err(|e| format!("the cluster of context {context}: {e}"))?;
                cluster.list("v1", "Node", None, "").await.map_err(|e| format!("cannot list its nodes: {e}"))
            })
        },
    );
    let nodes = match nodes {
        Ok(nodes) => nodes,
        Err(message) => {
            let _ = writeln!(stderr, "error: {message}");
            return ExitCode::from(1);
        }
    };
    let site = args.site.clone().unwrap_or_else(|| context.clone());
    let Some(site) = sovereign_ir::values::suggest_name(&site) else {
        let _ = writeln!(stderr, "error: `{site}` cannot be a site name: pass --site");
        return ExitCode::from(2);
    };
    let mut out = format!(
        "// Written by `sovereign discover --kubeconfig`: the nodes of context {context}.\nsite \"{site}\" tier=\"server\" region=\"{}\" {{\n    cluster kind=\"k3s\" context=\"{context}\"\n",
        args.region
    );
    let mut problems = Vec::new();
    for machine in cluster::machines(&nodes, catalog) {
        let found = render(&machine, catalog);
        out.extend(found.kdl.lines().map(|l| format!("    {l}\n")));
        problems.extend(found.problems.into_iter().map(|p| format!("node {}: {p}", machine.name)));
    }
    out.push_str("}\n");
    let _ = std::io::stdout().write_all(out.as_bytes());
    for problem in &problems {
        let _ = writeln!(stderr, "warning: {problem}");
    }
    if problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// `plan --refresh`: the differences between each site's declared nodes
/// and its cluster's Node objects, as warnings; a cluster that cannot be
/// read is said too (the plan goes on).
pub(crate) fn hardware_drift(
    spec: &sovereign_model::Spec,
    catalog: &Catalog,
    args: &crate::ClusterArgs,
) -> Vec<String> {
    let sites: Vec<&sovereign_model::Site> =
        spec.sites.values().filter(|site| site.cluster.is_some() && !site.nodes.is_empty()).collect();
    if sites.is_empty() {
        return Vec::new();
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return vec!["hardware not compared: cannot start the runtime".into()];
    };
    let settings = sovereign_kubernetes::Settings {
        request_timeout: std::time::Duration::from_secs_f64(args.request_timeout.max(0.1)),
        ..sovereign_kubernetes::Settings::default()
    };
    runtime.block_on(async {
        let mut found = Vec::new();
        for site in sites {
            let context = args.context.clone().or_else(|| site.cluster.as_ref().map(|c| c.context.value.to_string()));
            let listed = match sovereign_kubernetes::Cluster::connect(
                args.kubeconfig.as_deref(),
                context.as_deref(),
                settings.clone(),
            )
            .await
            {
                Ok(cluster) => cluster.list("v1", "Node", None, "").await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match listed {
                Ok(nodes) => found.extend(hardware::differences(site, &cluster::machines(&nodes, catalog), catalog)),
                Err(why) => found.push(format!("site \"{}\": hardware not compared: {why}", site.name.qualified)),
            }
        }
        found
    })
}

/// A kubeconfig's `current-context`.
fn current_context(kubeconfig: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(kubeconfig).ok()?;
    let config: serde_json::Value = serde_saphyr::from_str(&text).ok()?;
    config.get("current-context")?.as_str().filter(|c| !c.is_empty()).map(str::to_owned)
}

/// This machine's `node` declaration, for `init --discover`; what it
/// could not map is said on stderr.
pub(crate) fn this_machine() -> Result<String, String> {
    let found = render(&machine(&DiscoverArgs::default())?, &crate::check_command::embedded_stdlib().schema.catalog);
    for problem in &found.problems {
        let _ = writeln!(std::io::stderr(), "warning: {problem}");
    }
    Ok(format!("{MACHINE_HEADER}\n{}", found.kdl))
}

/// The machine from the files given, else from `nvidia-smi` and `/proc`.
fn machine(args: &DiscoverArgs) -> Result<Machine, String> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let xml = match &args.nvidia_smi {
        Some(path) => Some(read(path)?),
        None => tool(&["-q", "-x"]),
    };
    let gpus = match &xml {
        Some(xml) => parse_smi_xml(xml)?,
        None => Vec::new(),
    };
    let profiles = match &args.mig_profiles {
        Some(path) => parse_lgip(&read(path)?),
        None if args.nvidia_smi.is_none() && !gpus.is_empty() => {
            tool(&["mig", "-lgip"]).map(|text| parse_lgip(&text)).unwrap_or_default()
        }
        None => Vec::new(),
    };
    let host = std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()).filter(|h| !h.is_empty());
    let wanted = args.name.clone().or(host).unwrap_or_else(|| "node-1".into());
    let name = sovereign_ir::values::suggest_name(&wanted)
        .ok_or_else(|| format!("`{wanted}` cannot be a node name: pass --name"))?;
    let cpus = args.cpus.or_else(|| {
        let online =
            std::fs::read_to_string("/proc/cpuinfo").ok()?.lines().filter(|l| l.starts_with("processor")).count();
        u32::try_from(online).ok().filter(|n| *n > 0)
    });
    let memory_gib = args.memory_gib.or_else(|| {
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        let kib: u64 =
            info.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib >> 20)
    });
    Ok(Machine { name, cpus, memory_gib, gpus, profiles })
}

/// `nvidia-smi ARGS`'s output, or `None` where it is not installed or fails.
fn tool(args: &[&str]) -> Option<String> {
    let output = std::process::Command::new("nvidia-smi").args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}
