//! `sovereign apply` and `sovereign destroy`: the plan run against the
//! sites' clusters (docs/apply.md). Under the state's lock: a journal left
//! by an interrupted run is replayed into the state first, then the plan
//! is made (or a saved one checked), shown, confirmed, executed
//! ([`sovereign::apply`]), and the state saved with what was done.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sovereign::apply::journal::{self, ApplyJournal};
use sovereign::apply::oci::BundleLayouts;
use sovereign::apply::refresh::{Refreshed, Wanted};
use sovereign::apply::{self, Event, Interrupt, Op, Outcome, Step};
use sovereign::plan::saved::{self, Planned};
use sovereign::plan::{self, Action};
use sovereign::state::kubernetes::KubernetesState;
use sovereign::state::store::{Held, Store};
use sovereign::state::{LocalState, StateDocument};
use sovereign_desired::{ApplySecret, ResourceId, Target};

use crate::plan_command::{Made, make};
use crate::{ApplyArgs, ClusterArgs, DestroyArgs, RunArgs};

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "error: {message}");
    ExitCode::from(1)
}

pub(crate) fn apply(args: &ApplyArgs) -> ExitCode {
    // A spec is a folder or a `.kdl` file; anything else is a saved plan.
    let is_plan = args.input.is_file() && args.input.extension() != Some("kdl".as_ref());
    if is_plan {
        return apply_saved(args);
    }
    let run = &args.run;
    // The plan is made under the lock, from the state as it will be changed.
    let mut lock = None;
    let made = make(
        &args.input,
        run.state.as_deref(),
        run.stdlib.as_deref(),
        run.color,
        run.partial,
        run.prune_data,
        &mut |store| {
            lock = Some(locked_and_resumed(store, "apply", run)?);
            Ok(())
        },
        &run.cluster,
    );
    let (Ok(Made { plan, basis, mut desired, store, state, origins, bundles }), Some(lock)) = (made, lock) else {
        return ExitCode::from(1);
    };
    let secrets = std::mem::take(&mut desired.secrets);
    let desired: Vec<Planned> = desired.resources.values().map(Planned::of).collect();
    let deletes: Vec<ResourceId> =
        plan.changes.iter().filter(|c| c.action == Action::Delete).map(|c| c.id.clone()).collect();
    let text = plan::render::human(&plan);
    let shown = Shown { plan: &text, origins: Some(&origins) };
    let work = Work { desired, secrets: &secrets, deletes: &deletes, bundles };
    execute(run, &store, state, &basis, &plan, work, Some(shown), "apply", lock)
}

fn apply_saved(args: &ApplyArgs) -> ExitCode {
    let run = &args.run;
    let saved = match saved::read(&args.input) {
        Ok(saved) => saved,
        Err(message) => return fail(&message),
    };
    let store = match saved_store(&saved, run) {
        Ok(store) => store,
        Err(message) => return fail(&message),
    };
    let Some(lock) = take_lock(&store, "apply", run) else { return ExitCode::from(1) };
    // The plan's basis now: its spec files read again, its state loaded.
    let state = match store.load() {
        Ok(state) => state,
        Err(e) => return fail(&e.to_string()),
    };
    let files = saved
        .basis
        .spec_files
        .keys()
        .filter_map(|path| Some((path.clone(), saved::sha256(&std::fs::read_to_string(path).ok()?))))
        .collect();
    let mut now = saved::Basis::new(files, state.as_ref(), saved.basis.prune_data);
    now.state_path.clone_from(&saved.basis.state_path);
    let since = saved.basis.changes_since(&now);
    if !since.is_empty() {
        let mut stderr = std::io::stderr();
        let _ = writeln!(stderr, "error: the plan {} is stale, so it is not applied:", args.input.display());
        for why in since {
            let _ = writeln!(stderr, "  - {why}");
        }
        let _ = writeln!(stderr, "make a new plan (`sovereign plan SPEC -o FILE`) and apply that");
        return ExitCode::from(1);
    }
    if store.journal_path().exists() {
        return fail("an interrupted apply left its journal: run `sovereign apply SPEC` to finish it, then plan again");
    }
    // Live drift since the plan: what it recorded is no longer what runs.
    if let Some(state) = &state {
        let wanted: Vec<Wanted<'_>> =
            saved.desired.iter().map(|p| Wanted { id: &p.id, body: p.body.get(), patch: p.patch }).collect();
        let mut live = state.clone();
        if let Some(found) = refresh(&mut live, &wanted, &saved.basis.contexts, &run.cluster) {
            let mut since: Vec<String> = found
                .drifted
                .iter()
                .map(|(id, paths)| format!("{id}: {} changed outside sovereign", paths.join(", ")))
                .collect();
            since.extend(found.gone.iter().map(|id| format!("{id} was deleted outside sovereign")));
            since.extend(
                found.orphans.iter().map(|id| format!("{id} carries the fabric's label and no state records it")),
            );
            if !since.is_empty() {
                let mut stderr = std::io::stderr();
                let _ = writeln!(
                    stderr,
                    "error: the plan {} is stale, so it is not applied: the clusters changed since",
                    args.input.display()
                );
                for why in since {
                    let _ = writeln!(stderr, "  - {why}");
                }
                let _ = writeln!(stderr, "make a new plan (`sovereign plan SPEC --refresh -o FILE`) and apply that");
                return ExitCode::from(1);
            }
        }
    }
    if !saved.has_changes {
        let _ = writeln!(std::io::stderr(), "the plan {} has no changes: nothing to apply", args.input.display());
        return ExitCode::SUCCESS;
    }
    let changes = saved_changes(&saved);
    let work =
        Work { desired: saved.desired, secrets: &saved.secrets, deletes: &saved.deletes, bundles: saved.bundles };
    execute(run, &store, state, &saved.basis, &changes, work, None, "apply", lock)
}

/// The store a saved plan names: `--state FILE`, its state file, or the
/// cluster of `kubernetes:CONTEXT/…` (the journal beside its spec).
fn saved_store(saved: &saved::SavedPlan, run: &RunArgs) -> Result<Store, String> {
    if let Some(path) = &run.state {
        return Ok(Store::Local(LocalState::new(path.clone())));
    }
    let Some(rest) = saved.basis.state_path.strip_prefix("kubernetes:") else {
        return Ok(Store::Local(LocalState::new(PathBuf::from(&saved.basis.state_path))));
    };
    let context = rest.split_once('/').map_or(rest, |(context, _)| context);
    let context = run.cluster.context.as_deref().unwrap_or(context);
    let settings = sovereign_kubernetes::Settings {
        request_timeout: Duration::from_secs_f64(run.cluster.request_timeout.max(0.1)),
        ..sovereign_kubernetes::Settings::default()
    };
    let remote = KubernetesState::connect(&saved.fabric, run.cluster.kubeconfig.as_deref(), Some(context), settings)
        .map_err(|e| e.to_string())?;
    let journal = saved.basis.journal.as_ref().map(PathBuf::from).ok_or_else(|| {
        format!(
            "the plan names the state {} but not its journal: make it again with this sovereign",
            saved.basis.state_path
        )
    })?;
    Ok(Store::Kubernetes(Box::new(remote), journal))
}

/// A saved plan's changes, as a plan: each as it was planned (a replace
/// stays a replace), the rest no-ops.
fn saved_changes(saved: &saved::SavedPlan) -> plan::Plan {
    let mut changes: Vec<plan::Change> = saved
        .desired
        .iter()
        .map(|planned| change(&planned.id, saved.actions.get(&planned.id).copied().unwrap_or(Action::NoOp)))
        .collect();
    changes.extend(saved.deletes.iter().map(|id| change(id, Action::Delete)));
    plan::Plan { fabric: saved.fabric.clone(), changes, impact: plan::impact::Impact::default() }
}

fn change(id: &ResourceId, action: Action) -> plan::Change {
    plan::Change {
        id: id.clone(),
        action,
        declaration: None,
        patch: false,
        fields: Vec::new(),
        replace_because: Vec::new(),
        data_loss: None,
        before: None,
        after: None,
    }
}

pub(crate) fn destroy(args: &DestroyArgs) -> ExitCode {
    let run = &args.run;
    let mut lock = None;
    let made = make(
        &args.spec,
        run.state.as_deref(),
        run.stdlib.as_deref(),
        run.color,
        true,
        true,
        &mut |store| {
            lock = Some(locked_and_resumed(store, "destroy", run)?);
            Ok(())
        },
        &run.cluster,
    );
    let (Ok(Made { basis, store, state, origins, .. }), Some(lock)) = (made, lock) else {
        return ExitCode::from(1);
    };
    let Some(state) = state.filter(|state| !state.resources.is_empty()) else {
        let _ =
            writeln!(std::io::stderr(), "nothing to destroy: the state {} records nothing applied", store.describe());
        return ExitCode::SUCCESS;
    };
    let plan = plan::plan(
        &state.fabric,
        &sovereign_desired::DesiredState::default(),
        Some(&state),
        plan::Options { prune_data: true },
    );
    let deletes: Vec<ResourceId> =
        plan.changes.iter().filter(|c| c.action == Action::Delete).map(|c| c.id.clone()).collect();
    let text = plan::render::human(&plan);
    let plan_state = Some(state);
    let shown = Shown { plan: &text, origins: Some(&origins) };
    let work = Work { desired: Vec::new(), secrets: &[], deletes: &deletes, bundles: BundleLayouts::new() };
    execute(run, &store, plan_state, &basis, &plan, work, Some(shown), "destroy", lock)
}

/// The state's lock, taken, and a journal an interrupted run left, replayed.
fn locked_and_resumed(store: &Store, operation: &str, run: &RunArgs) -> Result<Held, ExitCode> {
    let lock = take_lock(store, operation, run).ok_or(ExitCode::from(1))?;
    resume(store).map_err(|message| fail(&message))?;
    Ok(lock)
}

fn take_lock(store: &Store, operation: &str, run: &RunArgs) -> Option<Held> {
    let timeout = Duration::from_secs_f64(run.lock_timeout.max(0.0));
    let waiting = |holder: &sovereign::state::lock::LockInfo| {
        let _ = writeln!(std::io::stderr(), "waiting up to {}s for the state's {holder}", timeout.as_secs());
    };
    match store.lock(operation, timeout, waiting) {
        Ok(taken) => {
            if let Some(old) = taken.took_over() {
                let _ = writeln!(std::io::stderr(), "took over the state's lock from a run that is gone: {old}");
            }
            Some(taken)
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            None
        }
    }
}

/// Records in the state what an interrupted run's journal says it did.
fn resume(store: &Store) -> Result<(), String> {
    let journal_path = store.journal_path();
    let (done, basis) = journal::replay(&journal_path)?;
    if !journal_path.exists() {
        return Ok(());
    }
    let mut state = store.load().map_err(|e| e.to_string())?;
    // A journal replays only onto the state its run started from: another
    // run that saved since (a shared state) knows better.
    let now = state.as_ref().map(|state| (state.lineage.clone(), state.serial));
    if let (Some(basis), Some(now)) = (&basis, &now)
        && basis != now
    {
        std::fs::remove_file(&journal_path)
            .map_err(|e| format!("cannot remove the outdated journal {}: {e}", journal_path.display()))?;
        let _ = writeln!(
            std::io::stderr(),
            "warning: an interrupted run's journal was made against state serial {}, and the state is at serial {} now (another run saved since): it is not replayed; `--refresh` reads what the clusters have",
            basis.1,
            now.1
        );
        return Ok(());
    }
    let count = done.len();
    if count > 0 {
        let Some(state) = state.as_mut() else {
            return Err(format!(
                "the apply journal {} records steps, and there is no state to record them in; move the journal away to start afresh",
                journal_path.display()
            ));
        };
        journal::record_into(state, done, sovereign::clock::now());
        state.serial += 1;
        store.save(state).map_err(|e| e.to_string())?;
    }
    std::fs::remove_file(&journal_path)
        .map_err(|e| format!("cannot remove the replayed journal {}: {e}", journal_path.display()))?;
    let _ = writeln!(
        std::io::stderr(),
        "resumed an interrupted run: {count} finished steps from its journal are now in the state"
    );
    Ok(())
}

/// What a run changes: the bodies to apply, the Secrets to make, what to
/// delete, and the layouts of the device bundles to push.
struct Work<'a> {
    desired: Vec<Planned>,
    secrets: &'a [ApplySecret],
    deletes: &'a [ResourceId],
    bundles: BundleLayouts,
}

/// Whether apply can make the change of `id` today: Kubernetes objects,
/// Temporal namespaces and schedules, Qdrant collections, and the device
/// bundles of a site with a `registry` (`body` is what is applied or, for
/// a delete, what was).
fn has_driver(id: &ResourceId, basis: &saved::Basis, body: Option<&str>) -> bool {
    match id.target {
        Target::K3s | Target::Helm => true,
        Target::Temporal => basis.endpoints.contains_key(&apply::driver::driver_key(id)),
        // Collections on the Qdrant a vectorstore's chart runs, through its site's cluster.
        Target::Qdrant => true,
        Target::Npu => body
            .and_then(|body| serde_json::from_str::<Value>(body).ok())
            .is_some_and(|body| body.get("push").is_some()),
    }
}

#[allow(clippy::too_many_arguments)]
fn execute(
    run: &RunArgs,
    store: &Store,
    state: Option<StateDocument>,
    basis: &saved::Basis,
    plan: &plan::Plan,
    work: Work<'_>,
    shown: Option<Shown<'_>>,
    operation: &str,
    lock: Held,
) -> ExitCode {
    let Work { desired, secrets, deletes, bundles } = work;
    let mut stderr = std::io::stderr();
    let selected = |id: &ResourceId| {
        run.target.is_empty()
            || run.target.iter().any(|word| word == id.target.word() || (word == "k3s" && id.target == Target::Helm))
    };
    let wanted: HashMap<&ResourceId, Action> =
        plan.changes.iter().filter(|c| c.action.changes() && selected(&c.id)).map(|c| (&c.id, c.action)).collect();
    // Only a bundle's body says whether it has a driver: no search for the rest.
    let body = |id: &ResourceId| {
        if id.target != Target::Npu {
            return None;
        }
        match desired.iter().find(|p| &p.id == id) {
            Some(planned) => Some(planned.body.get()),
            None => state.as_ref().and_then(|s| s.resources.get(id)).map(|r| r.applied.get()),
        }
    };
    let driverless: BTreeMap<&str, usize> =
        wanted.keys().filter(|id| !has_driver(id, basis, body(id))).fold(BTreeMap::new(), |mut counts, id| {
            *counts.entry(id.target.word()).or_default() += 1;
            counts
        });
    if !driverless.is_empty() {
        let list: Vec<String> = driverless
            .iter()
            .map(|(target, n)| match *target {
                "temporal" => format!("{n} for a Temporal on a site without a cluster and with no `endpoint`"),
                "npu" => {
                    format!("{n} device bundles of a site with no `registry`; `sovereign bundle export` writes them")
                }
                _ => format!("{n} for {target}"),
            })
            .collect();
        return fail(&format!(
            "not yet supported: {} of the changes are for targets {operation} has no driver for yet ({}); `--target` leaves them out (`--target k3s` changes only the Kubernetes part)",
            driverless.values().sum::<usize>(),
            list.join(", ")
        ));
    }
    // A bundle to push whose layout the run does not hold (a saved plan
    // without it) fails the run before anything is changed, not midway.
    let layoutless: Vec<String> = desired
        .iter()
        .filter(|p| p.id.target == Target::Npu && wanted.get(&p.id).is_some_and(|a| *a != Action::Delete))
        .filter_map(|p| {
            let body: Value = serde_json::from_str(p.body.get()).ok()?;
            let digest = body.get("digest")?.as_str()?;
            (body.get("push").is_some() && !bundles.contains_key(digest)).then(|| p.id.to_string())
        })
        .collect();
    if !layoutless.is_empty() {
        return fail(&format!(
            "nothing was applied: the layouts of {} are not in this run; make the plan again with this sovereign",
            layoutless.join(", ")
        ));
    }
    if !run.prune_data && operation == "apply" {
        let replaced: Vec<String> = plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Replace && plan::holds_data(&c.id).is_some() && wanted.contains_key(&c.id))
            .map(|c| c.id.to_string())
            .collect();
        if !replaced.is_empty() {
            return fail(&format!(
                "replacing {} would delete the data it holds; apply with --prune-data to allow it",
                replaced.join(", ")
            ));
        }
    }
    if wanted.is_empty() {
        let _ = writeln!(stderr, "no changes: the clusters already have what the spec says (as the state records it)");
        return ExitCode::SUCCESS;
    }
    if let Some(Shown { plan: text, .. }) = &shown {
        let _ = std::io::stdout().write_all(text.as_bytes());
        if !run.auto_approve {
            if !std::io::stdin().is_terminal() {
                return fail(&format!("{operation} changes clusters: confirm on a terminal, or pass --auto-approve"));
            }
            let _ = write!(
                stderr,
                "{} {} changes? Only 'yes' goes on: ",
                if operation == "destroy" { "Destroy with" } else { "Apply" },
                wanted.len()
            );
            let _ = stderr.flush();
            let mut answer = String::new();
            let _ = std::io::stdin().lock().read_line(&mut answer);
            if answer.trim() != "yes" {
                let _ = writeln!(stderr, "{operation} cancelled; nothing was changed");
                return ExitCode::from(1);
            }
        }
    }
    // The state exists before the first step, so that a journal always has one to land in.
    let mut state = state.unwrap_or_else(|| StateDocument::new(&plan.fabric));
    let mut steps = steps(&wanted, desired, secrets, deletes, &state);
    // A Secret whose source is missing fails the run before anything is applied.
    let missing: Vec<String> =
        steps.iter().filter_map(|step| step.makes.as_ref()).filter_map(apply::secrets::missing_source).collect();
    if !missing.is_empty() {
        return fail(&format!("nothing was applied: {}", missing.join("; ")));
    }
    if let Err(e) = store.save(&state) {
        return fail(&e.to_string());
    }
    let journal_path = store.journal_path();
    if let Some(parent) = journal_path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let journal = match ApplyJournal::open(&journal_path, &lock.info().id, operation, &state.lineage, state.serial) {
        Ok(journal) => journal,
        Err(message) => return fail(&message),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let json = run.json;
    let progress = crate::progress::Progress::new(json, steps.len());
    let report = |event: Event<'_>| progress.report(&event);
    let interrupt = Arc::new(Interrupt::default());
    let (outcomes, overrides) = runtime.block_on(async {
        let crate::reach::Reached { drivers, clusters } =
            crate::reach::reach(&steps, basis, &run.cluster, run.force_conflicts, Arc::new(bundles)).await;
        let overrides = crate::gate_check::check(&mut steps, basis, &clusters, &state, run).await;
        let steps = &steps;
        let watcher = Arc::clone(&interrupt);
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                let level = watcher.raise();
                let message = if level == 1 {
                    "interrupted: no new steps start; waiting for those in flight (Ctrl-C again aborts them)"
                } else {
                    "aborted: the journal keeps the run resumable"
                };
                let _ = writeln!(std::io::stderr(), "{message}");
            }
        });
        let settings = apply::Settings {
            concurrency: run.concurrency,
            per_cluster: run.cluster_concurrency,
            timeout_scale: run.timeout_scale,
            ..apply::Settings::default()
        };
        (apply::execute(steps, &drivers, &journal, &settings, &report, &interrupt).await, overrides)
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Err(why) = journal.close() {
        return fail(&format!(
            "the apply journal {} could not be written in full ({why}): what it holds is kept, and the next apply records it and applies the rest again",
            journal_path.display()
        ));
    }
    // The journal is what was done (also by steps an abort cut short): the
    // state is made from it, and from the steps that send nothing.
    let now = sovereign::clock::now();
    match journal::replay(&journal_path) {
        Ok((done, _)) => {
            journal::record_into(&mut state, done, now);
        }
        Err(message) => return fail(&format!("{message}; the journal {} is kept", journal_path.display())),
    }
    for (step, outcome) in steps.iter().zip(&outcomes) {
        if let (Op::Carried, Outcome::Carried) = (step.op, outcome) {
            state.record(&step.planned, None, now);
        }
    }
    crate::gate_check::record(&mut state, &overrides, &steps, &outcomes, now);
    state.serial += 1;
    if let Some(why) = lock.lost() {
        return fail(&format!(
            "the state's lock was lost during the run ({why}), so the state is not saved over another run's; the journal {} keeps what was done, and the next apply records it",
            journal_path.display()
        ));
    }
    if let Err(e) = store.save(&state) {
        return fail(&format!("{e}; the journal {} keeps what was done", journal_path.display()));
    }
    let _ = std::fs::remove_file(&journal_path);
    drop(lock);
    progress.finish();
    if !json {
        let origins = shown.and_then(|shown| shown.origins);
        let _ = write!(stderr, "{}", crate::refusals::render_refusals(&steps, &outcomes, origins));
    }
    summary(&steps, &outcomes, operation, json)
}

/// What a run from a spec shows: the plan to confirm, and the spec's
/// sources for diagnostics. A saved plan was shown when it was made.
pub(crate) struct Shown<'a> {
    plan: &'a str,
    origins: Option<&'a crate::refusals::Origins>,
}

/// The steps in plan order, each after what it depends on.
fn steps(
    wanted: &HashMap<&ResourceId, Action>,
    desired: Vec<Planned>,
    secrets: &[ApplySecret],
    deletes: &[ResourceId],
    state: &StateDocument,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut index: HashMap<ResourceId, usize> = HashMap::new();
    for planned in desired {
        let Some(&action) = wanted.get(&planned.id) else { continue };
        let op = match (planned.id.target, action) {
            (Target::Helm, _) => Op::Carried,
            (_, Action::Replace) => Op::Replace,
            _ => Op::Apply,
        };
        let object: Value = serde_json::from_str(planned.body.get()).unwrap_or(Value::Null);
        index.insert(planned.id.clone(), steps.len());
        steps.push(Step { op, planned, object, after: Vec::new(), makes: None, blocked: None });
    }
    let built = steps.len();
    add_secrets(&mut steps, secrets, &state.fabric);
    let applies = steps.len();
    for step in 0..built {
        let mut after: Vec<usize> =
            steps[step].planned.depends_on.iter().filter_map(|id| index.get(id).copied()).collect();
        // Helm values are done with the HelmChart that carries them.
        if steps[step].op == Op::Carried {
            let id = &steps[step].planned.id;
            let chart = steps.iter().position(|other| {
                other.planned.id.target == Target::K3s
                    && other.planned.id.site == id.site
                    && &*other.planned.id.kind == "helm.cattle.io/HelmChart"
                    && other.planned.id.name == id.name
            });
            after.extend(chart);
        }
        after.extend(std::mem::take(&mut steps[step].after));
        after.sort_unstable();
        after.dedup();
        steps[step].after = after;
    }
    for id in deletes.iter().filter(|id| wanted.contains_key(id)) {
        let Some(record) = state.resources.get(id) else { continue };
        let planned = Planned {
            id: id.clone(),
            declaration: record.declaration.as_deref().map(str::to_owned),
            patch: record.patch,
            depends_on: record.depends_on.clone(),
            content_sha256: record.content_sha256.clone(),
            body: record.applied.clone(),
        };
        let op = if id.target == Target::Helm { Op::Carried } else { Op::Delete };
        let object: Value = serde_json::from_str(record.applied.get()).unwrap_or(Value::Null);
        index.insert(id.clone(), steps.len());
        steps.push(Step { op, planned, object, after: Vec::new(), makes: None, blocked: None });
    }
    // A delete waits for every apply of its site (what replaces it may be
    // among them), and for the deletes of what depends on it.
    for step in applies..steps.len() {
        let id = steps[step].planned.id.clone();
        let mut after: Vec<usize> = (0..applies).filter(|&other| steps[other].planned.id.site == id.site).collect();
        after.extend((applies..steps.len()).filter(|&other| steps[other].planned.depends_on.contains(&id)));
        steps[step].after = after;
    }
    steps
}

/// The Secrets apply makes, on the sites this run touches: each after its
/// namespace, and before everything in that namespace (and the HelmCharts
/// installing into it). Their `after` is final; the others' is merged.
fn add_secrets(steps: &mut Vec<Step>, secrets: &[ApplySecret], fabric: &str) {
    let built = steps.len();
    let sites: std::collections::BTreeSet<Arc<str>> = steps
        .iter()
        .filter(|step| step.planned.id.target == Target::K3s)
        .map(|step| Arc::clone(&step.planned.id.site))
        .collect();
    for secret in secrets.iter().filter(|secret| sites.contains(&secret.site)) {
        let object = sovereign::apply::secrets::identity(secret, fabric);
        let text = object.to_string();
        let Ok(body) = serde_json::value::RawValue::from_string(text.clone()) else { continue };
        let id = ResourceId {
            target: Target::K3s,
            site: Arc::clone(&secret.site),
            kind: "Secret".into(),
            namespace: Some(Arc::clone(&secret.namespace)),
            name: Arc::clone(&secret.name),
        };
        let namespace = (0..built).filter(|&step| {
            let other = &steps[step].planned.id;
            other.site == secret.site && &*other.kind == "Namespace" && other.name == secret.namespace
        });
        let after: Vec<usize> = namespace.collect();
        let planned = Planned {
            id,
            declaration: None,
            patch: false,
            depends_on: Vec::new(),
            content_sha256: saved::sha256(&text),
            body,
        };
        let index = steps.len();
        steps.push(Step { op: Op::Secret, planned, object, after, makes: Some(secret.clone()), blocked: None });
        for step in steps.iter_mut().take(built) {
            let reads =
                |pointer: &str| step.object.pointer(pointer).and_then(Value::as_str) == Some(&*secret.namespace);
            let inside = reads("/metadata/namespace") || reads("/spec/targetNamespace");
            if inside && step.planned.id.site == secret.site && &*step.planned.id.kind != "Namespace" {
                step.after.push(index);
            }
        }
    }
}

/// `--refresh`: the state made what the clusters have now
/// ([`sovereign::apply::refresh`]), and what changed said on stderr.
pub(crate) fn refresh(
    state: &mut StateDocument,
    desired: &[Wanted<'_>],
    contexts: &BTreeMap<String, String>,
    cluster: &ClusterArgs,
) -> Option<Refreshed> {
    let mut stderr = std::io::stderr();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = writeln!(stderr, "warning: not refreshed: cannot start the runtime: {e}");
            return None;
        }
    };
    let sites: std::collections::BTreeSet<Arc<str>> = state
        .resources
        .keys()
        .chain(desired.iter().map(|wanted| wanted.id))
        .filter(|id| id.target == Target::K3s)
        .map(|id| Arc::clone(&id.site))
        .collect();
    let found = runtime.block_on(async {
        let clusters = crate::reach::connect(&sites, contexts, cluster, false).await;
        sovereign::apply::refresh::refresh(state, desired, &clusters).await
    });
    for (id, paths) in &found.drifted {
        let _ = writeln!(stderr, "drift: {id}: {} changed outside sovereign", paths.join(", "));
    }
    for id in &found.gone {
        let _ = writeln!(stderr, "drift: {id} was deleted outside sovereign");
    }
    for id in &found.orphans {
        let _ = writeln!(stderr, "drift: {id} carries the fabric's label and no state records it: pruned");
    }
    for why in &found.unreachable {
        let _ = writeln!(stderr, "warning: not refreshed: {why}");
    }
    let _ = writeln!(
        stderr,
        "refreshed: {} drifted, {} deleted outside sovereign, {} unrecorded",
        found.drifted.len(),
        found.gone.len(),
        found.orphans.len()
    );
    Some(found)
}

pub(crate) fn op_word(op: Op) -> &'static str {
    match op {
        Op::Apply => "apply",
        Op::Replace => "replace",
        Op::Delete => "delete",
        Op::Carried => "carried",
        Op::Secret => "secret",
    }
}

pub(crate) fn outcome_words(outcome: &Outcome) -> (&'static str, Option<&str>) {
    match outcome {
        Outcome::Applied(_) => ("ready", None),
        Outcome::Deleted => ("deleted", None),
        Outcome::Carried => ("carried", None),
        Outcome::Failed(failure) => ("failed", Some(&failure.why)),
        Outcome::Skipped(why) => ("skipped", Some(why)),
        Outcome::NotStarted => ("not-started", None),
    }
}

fn summary(steps: &[Step], outcomes: &[Outcome], operation: &str, json: bool) -> ExitCode {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (step, outcome) in steps.iter().zip(outcomes) {
        let word = match (step.op, outcome) {
            (Op::Secret, Outcome::Applied(_)) => "secrets made",
            _ => outcome_words(outcome).0,
        };
        *counts.entry(word).or_default() += 1;
    }
    let all_done = outcomes.iter().all(Outcome::done);
    if json {
        let _ = writeln!(
            std::io::stdout(),
            "{}",
            json!({"event": "summary", "operation": operation, "counts": counts, "complete": all_done})
        );
    } else {
        let mut stderr = std::io::stderr();
        let list: Vec<String> = counts.iter().map(|(word, n)| format!("{n} {word}")).collect();
        let _ = writeln!(stderr, "{operation}: {}", list.join(", "));
        let not_done: Vec<&Step> =
            steps.iter().zip(outcomes).filter(|(_, outcome)| !outcome.done()).map(|(step, _)| step).collect();
        if !not_done.is_empty() {
            let _ = writeln!(
                stderr,
                "not done ({}); `sovereign plan` shows what is left, and a new {operation} goes on from there:",
                not_done.len()
            );
            for step in not_done.iter().take(20) {
                let _ = writeln!(stderr, "  - {}", step.planned.id);
            }
            if not_done.len() > 20 {
                let _ = writeln!(stderr, "  … and {} more", not_done.len() - 20);
            }
        }
    }
    if all_done { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
