//! `sovereign build`: the targets' resources, built a batch of sites at a
//! time (the signing keys read first from their secrets), written by
//! `build_writer` (the layout, the index, the atomic swap; docs/build.md),
//! or one site printed for `kubectl apply -f -`. What cannot be built is
//! said; without `--partial` it refuses the build and `DIR` is untouched.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::Value;
use sovereign_desired::{DesiredState, Resource, Target};
use sovereign_diagnostics::{Format, render};
use sovereign_model::Spec;

use crate::BuildArgs;
use crate::build_writer::{BuildWriter, write_atomically, yaml_streams};
use crate::check_command::{load, render_config};

/// Sites built and written together: a large fabric is built a batch at a
/// time, so that its whole desired state is never in memory at once. At
/// least this many sites per batch, and no more than about 32 batches
/// (each batch walks every declaration to find its sites' work).
const BATCH_SITES: usize = 256;
const MAX_BATCHES: usize = 32;

pub(crate) fn run(args: &BuildArgs) -> ExitCode {
    let config = render_config(args.color);
    let compiled = match load(&args.spec, args.stdlib.as_deref(), config) {
        Ok(compiled) => compiled,
        Err(code) => return code,
    };
    let mut stderr = std::io::stderr();
    // The analysis runs only on a spec without errors; capacity and
    // sovereignty errors come from it.
    let (Some(spec), Some(analysis)) =
        (compiled.spec.as_ref(), compiled.analysis.as_ref().filter(|_| !compiled.has_errors()))
    else {
        let _ = write!(stderr, "{}", render(&compiled.diagnostics, &compiled.sources, Format::Human, config));
        let _ = writeln!(stderr, "error: the spec has errors; nothing was built");
        return ExitCode::from(1);
    };
    let keys = signing_keys(spec);
    let emit = |sites: &[Arc<str>]| {
        let state = DesiredState::for_sites(sites.iter().cloned());
        let mut state = sovereign_k3s::emit_for(spec, &compiled.fabric, analysis, &compiled.catalog, state);
        sovereign_temporal::emit_into(spec, analysis, &mut state);
        let bundles = sovereign_npu::emit_into(spec, analysis, &keys, &mut state);
        (state, bundles)
    };
    if let Some(site) = &args.site {
        let (state, _) = emit(&[Arc::from(site.as_str())]);
        if !report(&state.assumptions, &state.unbuilt, args.partial) {
            return ExitCode::from(1);
        }
        return print_site(&state, site, args.json || args.format == crate::SiteFormat::Json);
    }
    let Some(out) = &args.output else {
        let _ = writeln!(stderr, "error: say where to write with -o DIR, or print one site with --site NAME");
        return ExitCode::from(2);
    };
    let fabric = spec.fabric.name.as_ref().map_or("fabric", |n| &*n.qualified);
    let mut sites: Vec<Arc<str>> = analysis.sites.sites.iter().map(|s| s.name.clone()).collect();
    sites.sort();
    let mut notes = Notes::default();
    let written = write_atomically(out, args.force, |root| {
        let mut writer = BuildWriter::new(root, fabric)?;
        // The next batch is built on another thread while this one is
        // written (the writer's YAML conversion uses every core too); the
        // channel holds none, so at most two batches are in memory.
        std::thread::scope(|scope| {
            let (built, batches) = std::sync::mpsc::sync_channel(0);
            let emit = &emit;
            let sites = &sites;
            scope.spawn(move || {
                for batch in sites.chunks(BATCH_SITES.max(sites.len().div_ceil(MAX_BATCHES))) {
                    // A closed channel: the writer stopped on an error.
                    if built.send(emit(batch)).is_err() {
                        break;
                    }
                }
            });
            for (mut state, bundles) in batches {
                // Two resources with one id, or a dependency on one never
                // built: an emitter's mistake, never written as a build.
                let problems = state.problems();
                if !problems.is_empty() {
                    return Err(format!("the build is inconsistent (a bug in sovereign): {}", problems.join("; ")));
                }
                writer.add(&state, &bundles)?;
                notes.take(&mut state);
            }
            Ok(())
        })?;
        if !report(&notes.assumptions, &notes.unbuilt, args.partial) {
            return Err(Refused.to_string());
        }
        writer.finish(&notes.at_apply, &notes.assumptions, &notes.unbuilt)
    });
    // Freeing the compilation one allocation at a time costs time; the OS reclaims it.
    std::mem::forget(compiled);
    match written {
        Ok(()) => {
            for what in summarize_at_apply(&notes.at_apply) {
                let _ = writeln!(stderr, "note: apply creates {what}");
            }
            let _ = writeln!(stderr, "built {} resources into {}", notes.resources, out.display());
            ExitCode::SUCCESS
        }
        Err(message) if message == Refused.to_string() => {
            let _ =
                writeln!(stderr, "error: nothing was built; `--partial` writes what can be built and lists the rest");
            ExitCode::from(1)
        }
        Err(message) => {
            let _ = writeln!(stderr, "error: {message}");
            ExitCode::from(1)
        }
    }
}

/// What every batch says besides its resources, in the order first said.
#[derive(Default)]
struct Notes {
    at_apply: Vec<String>,
    assumptions: Vec<String>,
    unbuilt: Vec<String>,
    /// Per list: a line said by every batch is kept once.
    seen: [std::collections::HashSet<String>; 3],
    resources: usize,
}

impl Notes {
    fn take(&mut self, state: &mut DesiredState) {
        self.resources += state.resources.len();
        for ((from, into), seen) in [
            (&mut state.at_apply, &mut self.at_apply),
            (&mut state.assumptions, &mut self.assumptions),
            (&mut state.unbuilt, &mut self.unbuilt),
        ]
        .into_iter()
        .zip(&mut self.seen)
        {
            for line in from.drain(..) {
                // A fabric-wide note is said by every batch: once is enough.
                if seen.insert(line.clone()) {
                    into.push(line);
                }
            }
        }
    }
}

/// A build refused for what it could not build (without `--partial`).
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\u{0}refused")
    }
}

/// Prints the warnings and what was not built; false when that refuses the build.
fn report(assumptions: &[String], unbuilt: &[String], partial: bool) -> bool {
    let mut stderr = std::io::stderr();
    for assumption in assumptions {
        let _ = writeln!(stderr, "warning: {assumption}");
    }
    let word = if partial { "warning: not built" } else { "error: cannot build" };
    for why in summarize(unbuilt) {
        let _ = writeln!(stderr, "{word}: {why}");
    }
    partial || unbuilt.is_empty()
}

/// The signing keys the edges name, read from their secrets' sources
/// (`env:` or `file:`; the process that builds holds them, as the one that
/// applies holds the others). A key is never printed or written; what
/// cannot be read is a reason in the list, without the value.
fn signing_keys(
    spec: &Spec,
) -> BTreeMap<sovereign_model::Id<sovereign_model::Secret>, Result<sovereign_npu::SigningKey, String>> {
    use sovereign_ir::values::SecretSource;
    let mut keys = BTreeMap::new();
    for edge in spec.edges.values() {
        let Some(key) = &edge.signing_key else { continue };
        if keys.contains_key(&key.value) {
            continue;
        }
        let secret = &spec.secrets[key.value];
        let text = match &secret.from.value {
            SecretSource::Env(var) => std::env::var(var).map_err(|_| format!("the environment has no {var}")),
            SecretSource::File(path) => std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}")),
            _ => Err("a signing key must come from `env:` or `file:`, which `build` can read".to_owned()),
        };
        keys.insert(key.value, text.and_then(|text| sovereign_npu::signing_key(&text)));
    }
    keys
}

/// The same reason for many declarations said once: `eval "a", "b" and
/// 1,248 more: …` (a fabric of thousands would print thousands of lines).
fn summarize(lines: &[String]) -> Vec<String> {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for line in lines {
        // `kind "name": reason`: the group is kind and reason.
        let parsed = line.split_once(" \"").and_then(|(kind, rest)| {
            let (name, reason) = rest.split_once("\": ")?;
            Some((format!("{kind}\u{0}{reason}"), name))
        });
        let (key, name) = parsed.unwrap_or_else(|| (line.clone(), ""));
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, names)) => names.push(name),
            None => groups.push((key, vec![name])),
        }
    }
    groups
        .into_iter()
        .map(|(key, names)| {
            let Some((kind, reason)) = key.split_once('\u{0}') else { return key };
            let shown: Vec<String> = names.iter().take(3).map(|n| format!("\"{n}\"")).collect();
            let more = names.len().saturating_sub(3);
            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
            format!("{kind} {}{more}: {reason}", shown.join(", "))
        })
        .collect()
}

/// What apply must create, at most ten lines of it.
fn summarize_at_apply(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = lines.iter().take(10).cloned().collect();
    if lines.len() > 10 {
        out.push(format!("… and {} more (`index.json` lists them all)", lines.len() - 10));
    }
    out
}

/// One site's Kubernetes objects on stdout, for `kubectl apply -f -`:
/// a YAML stream, or a JSON array with `--json` (patches are left out: they
/// change objects sovereign does not own).
fn print_site(state: &DesiredState, site: &str, as_json: bool) -> ExitCode {
    // In dependency order, so that `kubectl apply -f -` creates a namespace before what is in it.
    let Ok(order) = state.order() else {
        let _ = writeln!(std::io::stderr(), "error: the build has a dependency cycle");
        return ExitCode::from(1);
    };
    let objects: Vec<&Resource> = order
        .into_iter()
        .map(|id| &state.resources[id])
        .filter(|r| &*r.id.site == site && !r.patch && r.id.target == Target::K3s)
        .collect();
    if objects.is_empty() {
        let _ = writeln!(std::io::stderr(), "error: no site `{site}` with a cluster has objects in this build");
        return ExitCode::from(1);
    }
    let mut stdout = std::io::stdout().lock();
    let written = if as_json {
        let bodies: Vec<Value> = objects.iter().map(|r| r.body()).collect();
        let mut text = serde_json::to_string_pretty(&bodies).unwrap_or_default();
        text.push('\n');
        stdout.write_all(text.as_bytes()).map_err(|e| e.to_string())
    } else {
        let bodies: Vec<&str> = objects.iter().map(|r| &*r.json).collect();
        yaml_streams(&[bodies], |_, bytes| stdout.write_all(bytes).map_err(|e| e.to_string()))
    };
    match written.and_then(|()| stdout.flush().map_err(|e| e.to_string())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot write: {e}");
            ExitCode::from(1)
        }
    }
}
