//! `sovereign plan`: the build of the whole fabric diffed against its state
//! (docs/apply.md). Needs no cluster. `-o FILE` saves the plan for
//! `apply FILE`; `--json` prints it for machines; `--detailed-exitcode`
//! exits 2 when there are changes. And `apply`/`destroy`, which say what
//! they cannot do yet rather than pretend.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use sovereign::plan::{self, Options, saved};
use sovereign::state::kubernetes::KubernetesState;
use sovereign::state::store::Store;
use sovereign::state::{LocalState, StateDocument};
use sovereign_desired::DesiredState;
use sovereign_diagnostics::{Format, render};
use sovereign_model::{Spec, StateBackend};

use crate::build_command::{emit, report, signing_keys};
use crate::check_command::{load, render_config};
use crate::{PlanArgs, UnlockArgs};

pub(crate) fn run(args: &PlanArgs) -> ExitCode {
    let error = 1;
    let made = match make(
        &args.spec,
        args.state.as_deref(),
        args.stdlib.as_deref(),
        args.color,
        args.partial,
        args.prune_data,
        &mut |_| Ok(()),
        &args.cluster,
    ) {
        Ok(made) => made,
        Err(code) => return code,
    };
    let Made { plan, basis, desired, store, bundles, .. } = made;
    let mut stdout = std::io::stdout().lock();
    if let Some(out) = &args.out {
        let text = saved::to_json(&plan, &basis, Some(&desired), Some(&bundles));
        if let Err(e) = sovereign::files::replace(out, text.as_bytes()) {
            let _ = writeln!(std::io::stderr(), "error: cannot save the plan to {}: {e}", out.display());
            return ExitCode::from(error);
        }
    }
    let text = if args.json { saved::to_json(&plan, &basis, None, None) } else { plan::render::human(&plan) };
    if stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).is_err() {
        return ExitCode::from(error);
    }
    if !args.json {
        let mut stderr = std::io::stderr();
        let _ = writeln!(stderr, "state: {}", store.describe());
        if let Some(out) = &args.out {
            let _ = writeln!(
                stderr,
                "saved the plan to {}: `sovereign apply {}` applies exactly it",
                out.display(),
                out.display()
            );
        }
    }
    // Freeing the build one allocation at a time costs time; the OS reclaims it.
    std::mem::forget(desired);
    if args.detailed_exitcode && plan.has_changes() { ExitCode::from(2) } else { ExitCode::SUCCESS }
}

/// How [`saved::Basis::endpoints`] writes a server reached through its
/// site's API server: `kubernetes-service:NAMESPACE/SERVICE:PORT`.
pub(crate) const KUBERNETES_SERVICE: &str = "kubernetes-service:";

/// A plan with what it was made from.
pub(crate) struct Made {
    pub(crate) plan: plan::Plan,
    pub(crate) basis: saved::Basis,
    pub(crate) desired: DesiredState,
    pub(crate) store: Store,
    /// The state the plan was made from (refreshed, with `--refresh`).
    pub(crate) state: Option<StateDocument>,
    /// The spec's sources, for apply's diagnostics.
    pub(crate) origins: crate::refusals::Origins,
    /// The layouts of the device bundles the spec builds, by digest.
    pub(crate) bundles: sovereign::apply::oci::BundleLayouts,
}

/// Checks and builds the spec, loads its state and plans. Errors are
/// printed here; the code is the exit code. `before_state` runs once the
/// state's path is known and before it is read: apply takes the lock
/// there, so that the plan is made from the state it will change.
#[allow(clippy::too_many_arguments)]
pub(crate) fn make(
    spec_path: &Path,
    state_override: Option<&Path>,
    stdlib: Option<&Path>,
    color: crate::ColorChoice,
    partial: bool,
    prune_data: bool,
    before_state: &mut dyn FnMut(&Store) -> Result<(), ExitCode>,
    cluster: &crate::ClusterArgs,
) -> Result<Made, ExitCode> {
    let config = render_config(color);
    let mut compiled = load(spec_path, stdlib, config, sovereign_analyze::Keep::Ir)?;
    let mut stderr = std::io::stderr();
    let (Some(spec), Some(analysis)) =
        (compiled.spec.as_ref(), compiled.analysis.as_ref().filter(|_| !compiled.has_errors()))
    else {
        let _ = write!(stderr, "{}", render(&compiled.diagnostics, &compiled.sources, Format::Human, config));
        let _ = writeln!(stderr, "error: the spec has errors; nothing was planned");
        return Err(ExitCode::from(1));
    };
    let fabric = spec.fabric.name.as_ref().map_or("fabric", |n| &*n.qualified).to_owned();
    let store = match state_location(spec_path, spec, state_override, cluster) {
        Ok(store) => store,
        Err(message) => {
            let _ = writeln!(stderr, "error: {message}");
            return Err(ExitCode::from(1));
        }
    };
    before_state(&store)?;
    let state = match store.load() {
        Ok(state) => state,
        Err(e) => {
            let _ = writeln!(stderr, "error: {e}");
            return Err(ExitCode::from(1));
        }
    };
    if let Some(state) = &state
        && state.fabric != fabric
    {
        let _ = writeln!(
            stderr,
            "error: the state {} is fabric \"{}\"'s, and this spec is fabric \"{fabric}\"'s: give this fabric its own state (`--state FILE`, or `state path=` in the spec)",
            store.describe(),
            state.fabric
        );
        return Err(ExitCode::from(1));
    }
    let keys = signing_keys(spec);
    let (desired, bundles) = emit(&compiled, spec, analysis, &keys, DesiredState::default());
    let problems = desired.problems();
    if !problems.is_empty() {
        let _ = writeln!(stderr, "error: the build is inconsistent (a bug in sovereign): {}", problems.join("; "));
        return Err(ExitCode::from(1));
    }
    // What cannot be built would be planned as deleted: refused, as for build.
    if !report(&desired.assumptions, &desired.unbuilt, partial) {
        let _ = writeln!(stderr, "error: nothing was planned; `--partial` plans what can be built and lists the rest");
        return Err(ExitCode::from(1));
    }
    let spec_files: BTreeMap<String, String> = compiled
        .sources
        .spec_files()
        .map(|(_, file)| (file.path.display().to_string(), saved::sha256(&file.text)))
        .collect();
    let mut basis = saved::Basis::new(spec_files, state.as_ref(), prune_data);
    basis.state_path = store.describe();
    if let Store::Kubernetes(_, journal) = &store {
        basis.journal = Some(journal.display().to_string());
    }
    basis.contexts = spec
        .sites
        .iter()
        .filter_map(|(_, site)| {
            Some((site.name.qualified.to_string(), site.cluster.as_ref()?.context.value.to_string()))
        })
        .collect();
    basis.endpoints = spec
        .temporals
        .values()
        .filter_map(|temporal| {
            let site = &spec.sites[temporal.site.value];
            let server = sovereign_helm::label(&temporal.name.qualified);
            let endpoint = match &temporal.endpoint {
                Some(endpoint) => endpoint.value.to_string(),
                // A Temporal sovereign deploys: its frontend through the site's API server.
                None if sovereign_helm::installs_temporal(analysis, temporal) => format!(
                    "{KUBERNETES_SERVICE}{}/{}:{}",
                    sovereign_desired::modules::namespace_name(&fabric, sovereign_desired::modules::Module::Metabolism),
                    sovereign_helm::frontend_service(&server),
                    sovereign_helm::TEMPORAL_HTTP_PORT
                ),
                None => return None,
            };
            Some((format!("temporal/{}/{server}", site.name.qualified), endpoint))
        })
        .collect();
    let mut state = state;
    if cluster.refresh {
        let mut refreshed = state.take().unwrap_or_else(|| StateDocument::new(&fabric));
        let wanted = sovereign::apply::refresh::wanted(&desired);
        crate::apply_command::refresh(&mut refreshed, &wanted, &basis.contexts, cluster);
        state = Some(refreshed).filter(|s| !s.resources.is_empty() || basis.state.is_some());
        // What the clusters report of their machines, against what the spec declares.
        for difference in crate::discover::hardware_drift(spec, &compiled.catalog, cluster) {
            let _ = writeln!(stderr, "warning: hardware: {difference}");
        }
    }
    let plan = {
        let span = tracing::info_span!("plan", sovereign.phase = "plan", sovereign.changes = tracing::field::Empty);
        let _plan = span.enter();
        let plan = plan::plan(&fabric, &desired, state.as_ref(), Options { prune_data });
        // As i64: the OpenTelemetry bridge sends u64s as text.
        let changes = plan.changes.iter().filter(|c| c.action.changes()).count();
        span.record("sovereign.changes", i64::try_from(changes).unwrap_or(i64::MAX));
        plan
    };
    let origins = crate::refusals::Origins::new(&compiled.fabric, std::mem::take(&mut compiled.sources), config);
    std::mem::forget(compiled);
    let bundles =
        bundles.into_iter().map(|bundle| (bundle.digest, sovereign_oci::Layout { files: bundle.files })).collect();
    Ok(Made { plan, basis, desired, store, state, origins, bundles })
}

/// Where the fabric's state is: `--state FILE`, else the spec's `state`
/// (`path=` relative to the root file's folder, or `backend="kubernetes"`
/// in its `site=`'s cluster), else `.sovereign/state.json` beside the root
/// file.
pub(crate) fn state_location(
    spec_path: &Path,
    spec: &Spec,
    state_override: Option<&Path>,
    cluster: &crate::ClusterArgs,
) -> Result<Store, String> {
    if let Some(path) = state_override {
        return Ok(Store::Local(LocalState::new(path.to_owned())));
    }
    let root = if spec_path.is_dir() { spec_path.join("fabric.kdl") } else { spec_path.to_owned() };
    let folder = root.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let fabric = spec.fabric.name.as_ref().map_or("fabric", |n| &*n.qualified);
    match &spec.fabric.state {
        Some(state) if state.backend.value == StateBackend::Kubernetes => {
            let site = state.site.as_ref().map(|site| &spec.sites[site.value]);
            let context = cluster
                .context
                .clone()
                .or_else(|| site.and_then(|site| site.cluster.as_ref()).map(|c| c.context.value.to_string()));
            let settings = sovereign_kubernetes::Settings {
                request_timeout: std::time::Duration::from_secs_f64(cluster.request_timeout.max(0.1)),
                ..sovereign_kubernetes::Settings::default()
            };
            let remote = KubernetesState::connect(fabric, cluster.kubeconfig.as_deref(), context.as_deref(), settings)
                .map_err(|e| format!("{e} (`--state FILE` keeps the state in a local file instead)"))?;
            let journal = folder.join(".sovereign").join(format!("{}.kubernetes.journal", remote.fabric));
            Ok(Store::Kubernetes(Box::new(remote), journal))
        }
        Some(state) => {
            let path =
                state.path.as_ref().map_or_else(|| folder.join(".sovereign/state.json"), |p| folder.join(&*p.value));
            Ok(Store::Local(LocalState::new(path)))
        }
        None => Ok(Store::Local(LocalState::new(folder.join(".sovereign/state.json")))),
    }
}

/// `sovereign unlock LOCK_ID`: frees the lock of a run that is gone.
pub(crate) fn unlock(args: &UnlockArgs) -> ExitCode {
    let mut stderr = std::io::stderr();
    let store = match &args.state {
        Some(path) => Store::Local(LocalState::new(path.clone())),
        None => {
            let compiled = match load(
                &args.spec,
                args.stdlib.as_deref(),
                render_config(args.color),
                sovereign_analyze::Keep::Ir,
            ) {
                Ok(compiled) => compiled,
                Err(code) => return code,
            };
            let Some(spec) = compiled.spec.as_ref() else {
                let _ = writeln!(stderr, "error: the spec has errors, so its state cannot be found; pass --state FILE");
                return ExitCode::from(1);
            };
            match state_location(&args.spec, spec, None, &args.cluster) {
                Ok(store) => store,
                Err(message) => {
                    let _ = writeln!(stderr, "error: {message}");
                    return ExitCode::from(1);
                }
            }
        }
    };
    match store.unlock(&args.lock_id) {
        Ok(info) => {
            let _ = writeln!(stderr, "freed {info}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(stderr, "error: {e}");
            ExitCode::from(1)
        }
    }
}
