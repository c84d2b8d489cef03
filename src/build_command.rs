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
use crate::build_writer::{BuildWriter, Layout, Output, Sink, write_atomically, yaml_stream};
use crate::check_command::{load, render_config};
pub(crate) use sovereign::emit::{SigningKeys, emit};

/// Sites built and written together: a large fabric is built a batch at a
/// time, so that its whole desired state is never in memory at once. At
/// least this many sites per batch: a small fabric's memory is mostly the
/// process and its compiled model, and a batch of a few sites keeps the
/// build under what its check holds.
const BATCH_SITES: usize = 8;
/// Each batch still walks some fabric-wide lists (the flows, the placed
/// serves) to find its sites' work: the batches of a build walk at most
/// about this many sites in all, or `MAX_BATCHES` batches if that is more.
const WALKED_SITES: usize = 200_000;
const MAX_BATCHES: usize = 32;
/// Threads building batches at once.
const MAX_BUILDERS: usize = 4;
/// Pieces of output a builder may render ahead of the writer (a piece is
/// at most a chunk of a stream, a few hundred kilobytes).
const PENDING: usize = 8;

pub(crate) fn run(args: &BuildArgs) -> ExitCode {
    crate::tune_allocator_for_build();
    let config = render_config(args.color);
    // The emitters read the typed model and the analysis only: the untyped
    // IR goes before the analysis, so that the peak is never the IR, the
    // model and the analysis together.
    let mut compiled = match load(&args.spec, args.stdlib.as_deref(), config, sovereign_analyze::Keep::ModelOnly) {
        Ok(compiled) => compiled,
        Err(code) => return code,
    };
    let _build = tracing::info_span!("build", sovereign.phase = "build").entered();
    let mut stderr = std::io::stderr();
    // The analysis runs only on a spec without errors; capacity and
    // sovereignty errors come from it.
    if compiled.spec.is_none() || compiled.analysis.is_none() || compiled.has_errors() {
        let _ = write!(stderr, "{}", render(&compiled.diagnostics, &compiled.sources, Format::Human, config));
        let _ = writeln!(stderr, "error: the spec has errors; nothing was built");
        return ExitCode::from(1);
    }
    // Nor the sources and diagnostics: nothing is rendered from here on.
    drop(std::mem::take(&mut compiled.sources));
    drop(std::mem::take(&mut compiled.diagnostics));
    let (Some(spec), Some(analysis)) = (compiled.spec.as_ref(), compiled.analysis.as_ref()) else {
        return ExitCode::from(1);
    };
    let keys = signing_keys(spec);
    let emit =
        |sites: &[Arc<str>]| emit(&compiled, spec, analysis, &keys, DesiredState::for_sites(sites.iter().cloned()));
    let fabric = spec.fabric.name.as_ref().map_or("fabric", |n| &*n.qualified);
    let layout = match Layout::new(fabric) {
        Ok(layout) => layout,
        Err(message) => {
            let _ = writeln!(stderr, "error: {message}");
            return ExitCode::from(1);
        }
    };
    let mut sites: Vec<Arc<str>> = analysis.sites.sites.iter().map(|s| s.name.clone()).collect();
    sites.sort();
    // `SOVEREIGN_BUILD_BATCH_SITES` trades memory for speed (docs/build.md);
    // the output is the same for any batch size.
    let per_batch = match std::env::var("SOVEREIGN_BUILD_BATCH_SITES") {
        Err(_) => {
            let batches = MAX_BATCHES.max(WALKED_SITES / sites.len().max(1));
            BATCH_SITES.max(sites.len().div_ceil(batches))
        }
        Ok(n) => match n.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                let _ =
                    writeln!(stderr, "error: SOVEREIGN_BUILD_BATCH_SITES must be a number of sites above 0, not `{n}`");
                return ExitCode::from(2);
            }
        },
    };
    let batches: Vec<&[Arc<str>]> = sites.chunks(per_batch).collect();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let builders = cores.clamp(1, MAX_BUILDERS).min(batches.len()).max(1);
    // A fabric of few, large sites is few batches: each builder converts
    // its YAML on the cores no other builder uses.
    let workers = (cores / builders).max(1);
    // A batch built, checked and rendered on a builder thread, with what
    // it says besides its resources.
    let build = |sites: &[Arc<str>], sink: &mut Sink<'_>| -> Result<Said, String> {
        let (mut state, bundles) = emit(sites);
        // Two resources with one id, or a dependency on one never built:
        // an emitter's mistake, never written as a build.
        let problems = state.problems();
        if !problems.is_empty() {
            return Err(format!("the build is inconsistent (a bug in sovereign): {}", problems.join("; ")));
        }
        layout.render(&state, &bundles, workers, sink)?;
        let said = Said {
            resources: state.resources.len(),
            lists: [
                std::mem::take(&mut state.at_apply),
                std::mem::take(&mut state.assumptions),
                std::mem::take(&mut state.unbuilt),
            ],
        };
        Ok(said)
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
    let mut notes = Notes::default();
    let written = write_atomically(out, args.force, |root| {
        let mut writer = BuildWriter::new(root)?;
        // Batches are built and rendered on builder threads, one per core
        // (at most `MAX_BUILDERS`),
        // taking batches in turn, while this thread writes what they send,
        // in the batches' order; a builder renders at most `PENDING` pieces
        // ahead, so memory is a batch per builder and those pieces.
        std::thread::scope(|scope| {
            let mut built = Vec::with_capacity(builders);
            for first in 0..builders {
                let (done, batch) = std::sync::mpsc::sync_channel(PENDING);
                built.push(batch);
                let (build, batches) = (&build, &batches);
                scope.spawn(move || {
                    for sites in batches.iter().skip(first).step_by(builders) {
                        // A closed channel: the writer stopped on an error.
                        let mut sink = |output| done.send(Message::Output(output)).map_err(|_| String::new());
                        // A panic is an error of the build, said, never a crash
                        // that leaves the lock and the half-written folder behind.
                        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(sites, &mut sink)))
                            .unwrap_or_else(|_| Err("a builder stopped (a bug in sovereign)".to_owned()));
                        let failed = built.is_err();
                        let last = match built {
                            Ok(said) => Message::Done(said),
                            Err(message) => Message::Failed(message),
                        };
                        if done.send(last).is_err() || failed {
                            break;
                        }
                    }
                });
            }
            // A large build's progress, on a terminal only (nothing on a pipe).
            let bar = (batches.len() > 1 && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
                let bar = indicatif::ProgressBar::with_draw_target(
                    Some(batches.iter().map(|b| b.len() as u64).sum()),
                    indicatif::ProgressDrawTarget::stderr(),
                );
                if let Ok(style) =
                    indicatif::ProgressStyle::with_template("[{elapsed_precise}] {pos}/{len} sites built")
                {
                    bar.set_style(style);
                }
                bar
            });
            // In the batches' order, whichever builder finished first.
            for at in 0..batches.len() {
                loop {
                    match built[at % builders].recv() {
                        Ok(Message::Output(output)) => writer.write(output)?,
                        Ok(Message::Done(said)) => {
                            notes.take(said);
                            if let Some(bar) = &bar {
                                bar.inc(batches[at].len() as u64);
                            }
                            break;
                        }
                        Ok(Message::Failed(message)) => return Err(message),
                        Err(_) => return Err("a builder stopped (a bug in sovereign)".to_owned()),
                    }
                }
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            Ok::<(), String>(())
        })?;
        notes.settle();
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

/// What a builder sends the writer: a batch's output as it is rendered,
/// then what the batch said, or why it failed.
enum Message {
    Output(Output),
    Done(Said),
    Failed(String),
}

/// What every batch says besides its resources; each line once after
/// [`Notes::settle`].
#[derive(Default)]
struct Notes {
    at_apply: Vec<String>,
    assumptions: Vec<String>,
    unbuilt: Vec<String>,
    /// Per list, its length when last deduplicated: a fabric-wide line is
    /// said by every batch, so a list is settled whenever it doubles.
    settled: [usize; 3],
    resources: usize,
}

/// What one batch said: its resources' count, and its lines of what apply
/// creates, the assumptions and what was not built.
struct Said {
    resources: usize,
    lists: [Vec<String>; 3],
}

impl Notes {
    fn take(&mut self, said: Said) {
        self.resources += said.resources;
        let lists = [&mut self.at_apply, &mut self.assumptions, &mut self.unbuilt];
        for ((from, into), settled) in said.lists.into_iter().zip(lists).zip(&mut self.settled) {
            into.extend(from);
            if into.len() >= 2 * (*settled).max(512) {
                *settled = settle(into);
            }
        }
    }

    /// Sorted, each line once: each batch says its notes in its emitters'
    /// order, and a fabric-wide note is said by every batch; sorted and
    /// deduplicated, they are the same however the sites were batched.
    fn settle(&mut self) {
        for list in [&mut self.at_apply, &mut self.assumptions, &mut self.unbuilt] {
            settle(list);
        }
    }
}

/// Sorts a list of notes and keeps each line once; its new length.
fn settle(list: &mut Vec<String>) -> usize {
    list.sort();
    list.dedup();
    list.len()
}

/// A build refused for what it could not build (without `--partial`).
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\u{0}refused")
    }
}

/// Prints the warnings and what was not built; false when that refuses the build.
pub(crate) fn report(assumptions: &[String], unbuilt: &[String], partial: bool) -> bool {
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
pub(crate) fn signing_keys(spec: &Spec) -> SigningKeys {
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
        let mut text = String::new();
        yaml_stream(objects.iter().map(|r| &*r.json), &mut text)
            .and_then(|()| stdout.write_all(text.as_bytes()).map_err(|e| e.to_string()))
    };
    match written.and_then(|()| stdout.flush().map_err(|e| e.to_string())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot write: {e}");
            ExitCode::from(1)
        }
    }
}
