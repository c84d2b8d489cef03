//! The plan as JSON (`plan --json`, format version [`PLAN_FORMAT`],
//! docs/apply.md) and as a saved plan (`plan -o FILE`): the same document
//! plus what apply needs to apply exactly it (the bodies of what it
//! creates, updates and replaces) and what it was made from (the spec's
//! files, the state's lineage and serial), so that a stale plan is refused
//! saying what changed since.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use sovereign_desired::{ApplySecret, DesiredState, ResourceId, SecretValue};

use super::{Action, Plan, fields::FieldChange, impact::Impact};
use crate::state::IdParts;
use crate::state::StateDocument;

/// The version of the plan document; a change that removes or renames a
/// field bumps it.
pub const PLAN_FORMAT: u32 = 1;

/// What a plan was made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Basis {
    /// `sovereign` and its version: the embedded stdlib and the emitters
    /// are part of what a plan depends on.
    pub made_by: String,
    /// sha256 of each spec file's text, by the path it was read from.
    pub spec_files: BTreeMap<String, String>,
    /// Where the state is, as the plan found it.
    pub state_path: String,
    /// The state's lineage and serial; `None` when nothing was applied yet.
    pub state: Option<StateVersion>,
    pub prune_data: bool,
    /// The kubeconfig context of each site's cluster, from the spec.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contexts: BTreeMap<String, String>,
    /// The HTTP API of each server that is not a Kubernetes object (a
    /// `temporal`'s `endpoint`), by the key of its driver
    /// (`temporal/SITE/SERVER`), from the spec.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<String, String>,
    /// The apply journal of this machine's runs, when the state is not a
    /// local file (a local state's journal is beside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateVersion {
    pub lineage: String,
    pub serial: u64,
}

impl Basis {
    #[must_use]
    pub fn new(spec_files: BTreeMap<String, String>, state: Option<&StateDocument>, prune_data: bool) -> Basis {
        Basis {
            made_by: format!("sovereign {}", env!("CARGO_PKG_VERSION")),
            spec_files,
            state_path: String::new(),
            state: state.map(|s| StateVersion { lineage: s.lineage.clone(), serial: s.serial }),
            prune_data,
            contexts: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            journal: None,
        }
    }

    /// What differs between the basis a plan was made on (`self`) and now;
    /// empty when the plan may be applied.
    #[must_use]
    pub fn changes_since(&self, now: &Basis) -> Vec<String> {
        let mut out = Vec::new();
        if self.made_by != now.made_by {
            out.push(format!("it was made by {}, and this is {}", self.made_by, now.made_by));
        }
        match (&self.state, &now.state) {
            (None, None) => {}
            (None, Some(state)) => {
                out.push(format!("the state was empty when it was made, and has serial {} now", state.serial));
            }
            (Some(_), None) => out.push("the state it was made against is gone".to_owned()),
            (Some(then), Some(state)) if then.lineage != state.lineage => out.push(format!(
                "it was made against another state (lineage {}, this state's is {})",
                then.lineage, state.lineage
            )),
            (Some(then), Some(state)) if then.serial != state.serial => out.push(format!(
                "the state changed since: serial {} when it was made, {} now (another apply ran)",
                then.serial, state.serial
            )),
            _ => {}
        }
        for (path, hash) in &self.spec_files {
            match now.spec_files.get(path) {
                None => out.push(format!("the spec file {path} is gone or cannot be read")),
                Some(current) if current != hash => out.push(format!("the spec file {path} changed")),
                _ => {}
            }
        }
        for path in now.spec_files.keys().filter(|p| !self.spec_files.contains_key(*p)) {
            out.push(format!("the spec file {path} was added to the spec"));
        }
        out
    }
}

/// sha256 of a text, as hex.
#[must_use]
pub fn sha256(text: &str) -> String {
    sovereign_desired::hex(&Sha256::digest(text.as_bytes()))
}

#[derive(Serialize)]
struct ChangeJson<'a> {
    id: String,
    #[serde(flatten)]
    parts: IdParts<'a>,
    action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    declaration: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    patch: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    before_sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after_sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    fields: &'a [FieldChange],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    replace_because: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    data_loss: Option<&'a str>,
}

#[derive(Serialize)]
struct PlanJson<'a> {
    format_version: u32,
    fabric: &'a str,
    basis: &'a Basis,
    summary: BTreeMap<&'static str, usize>,
    has_changes: bool,
    /// Every resource that apply changes or keeps, in apply order (no-ops
    /// are counted in `summary`).
    changes: Vec<ChangeJson<'a>>,
    impact: &'a Impact,
    #[serde(skip_serializing_if = "Option::is_none")]
    desired: Option<Vec<DesiredJson<'a>>>,
    /// The Secrets apply makes (where their values come from, never a value).
    #[serde(skip_serializing_if = "Option::is_none")]
    secrets: Option<Vec<SecretJson>>,
    /// The OCI layouts of the device bundles apply pushes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bundles: Vec<BundleJson>,
}

/// A device bundle's layout in a saved plan: each file's bytes in base64.
#[derive(Serialize, Deserialize)]
struct BundleJson {
    digest: String,
    files: BTreeMap<String, String>,
}

/// An [`ApplySecret`] in a saved plan.
#[derive(Serialize, Deserialize)]
struct SecretJson {
    site: String,
    namespace: String,
    name: String,
    key: String,
    /// `random`, `env:VARIABLE` or `file:PATH`.
    value: String,
}

impl SecretJson {
    fn of(secret: &ApplySecret) -> SecretJson {
        let value = match &secret.value {
            SecretValue::Random => "random".to_owned(),
            SecretValue::Env(variable) => format!("env:{variable}"),
            SecretValue::File(path) => format!("file:{path}"),
        };
        SecretJson {
            site: secret.site.to_string(),
            namespace: secret.namespace.to_string(),
            name: secret.name.to_string(),
            key: secret.key.to_string(),
            value,
        }
    }

    fn into_secret(self) -> Result<ApplySecret, String> {
        let value = match self.value.split_once(':') {
            _ if self.value == "random" => SecretValue::Random,
            Some(("env", variable)) => SecretValue::Env(variable.to_owned()),
            Some(("file", path)) => SecretValue::File(path.to_owned()),
            _ => {
                return Err(format!(
                    "the secret {}/{} has an unknown source `{}`",
                    self.namespace, self.name, self.value
                ));
            }
        };
        Ok(ApplySecret {
            site: self.site.into(),
            namespace: self.namespace.into(),
            name: self.name.into(),
            key: self.key.into(),
            value,
        })
    }
}

/// A body apply sends, as the build made it.
#[derive(Serialize)]
struct DesiredJson<'a> {
    id: String,
    #[serde(flatten)]
    parts: IdParts<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    declaration: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    patch: bool,
    depends_on: Vec<IdParts<'a>>,
    content_sha256: &'a str,
    body: &'a RawValue,
}

/// The plan as `plan --json` prints it; with `desired`, as `plan -o`
/// saves it (with the bodies apply sends).
#[must_use]
pub fn to_json(
    plan: &Plan,
    basis: &Basis,
    desired: Option<&DesiredState>,
    bundles: Option<&crate::apply::oci::BundleLayouts>,
) -> String {
    let summary = plan.counts().into_iter().map(|(action, n)| (action.word(), n)).collect();
    let changes = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| ChangeJson {
            id: c.id.to_string(),
            parts: IdParts::new(&c.id),
            action: c.action,
            declaration: c.declaration.as_deref(),
            patch: c.patch,
            before_sha256: c.before.as_deref(),
            after_sha256: c.after.as_deref(),
            fields: &c.fields,
            replace_because: &c.replace_because,
            data_loss: c.data_loss,
        })
        .collect();
    let secrets: Option<Vec<SecretJson>> = desired.map(|desired| desired.secrets.iter().map(SecretJson::of).collect());
    let bundles = match (desired, bundles) {
        (Some(desired), Some(layouts)) => pushed_bundles(plan, desired, layouts),
        _ => Vec::new(),
    };
    let desired = desired.map(|desired| {
        plan.changes
            .iter()
            .filter(|c| matches!(c.action, Action::Create | Action::Update | Action::Replace))
            .filter_map(|c| desired.resources.get(&c.id))
            .filter_map(|r| {
                let body: &RawValue = serde_json::from_str(&r.json).ok()?;
                Some(DesiredJson {
                    id: r.id.to_string(),
                    parts: IdParts::new(&r.id),
                    declaration: r.declaration.as_deref(),
                    patch: r.patch,
                    depends_on: r.depends_on.iter().map(IdParts::new).collect(),
                    content_sha256: &r.hash,
                    body,
                })
            })
            .collect()
    });
    let doc = PlanJson {
        format_version: PLAN_FORMAT,
        fabric: &plan.fabric,
        basis,
        summary,
        has_changes: plan.has_changes(),
        changes,
        impact: &plan.impact,
        secrets,
        desired,
        bundles,
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// The layouts of the bundles the plan pushes (created, updated, replaced).
fn pushed_bundles(plan: &Plan, desired: &DesiredState, layouts: &crate::apply::oci::BundleLayouts) -> Vec<BundleJson> {
    let digests: std::collections::BTreeSet<String> = plan
        .changes
        .iter()
        .filter(|c| c.id.target == sovereign_desired::Target::Npu && c.action.changes() && c.action != Action::Delete)
        .filter_map(|c| desired.resources.get(&c.id))
        .filter_map(|r| serde_json::from_str::<serde_json::Value>(&r.json).ok())
        .filter(|body| body.get("push").is_some())
        .filter_map(|body| body.get("digest").and_then(serde_json::Value::as_str).map(str::to_owned))
        .collect();
    digests
        .into_iter()
        .filter_map(|digest| {
            let layout = layouts.get(&digest)?;
            let files =
                layout.files.iter().map(|(path, bytes)| (path.clone(), sovereign_desired::base64(bytes))).collect();
            Some(BundleJson { digest, files })
        })
        .collect()
}

/// A saved bundle, decoded and checked: every blob has its digest, and
/// its index names the digest it is saved under.
fn read_bundle(bundle: BundleJson) -> Result<(String, sovereign_oci::Layout), String> {
    let mut layout = sovereign_oci::Layout::default();
    for (path, text) in bundle.files {
        let bytes = sovereign_desired::unbase64(&text)
            .ok_or_else(|| format!("bundle {}: its file {path} is not base64", bundle.digest))?;
        layout.files.insert(path, bytes);
    }
    for path in layout.files.keys() {
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            layout.blob(&format!("sha256:{hex}")).map_err(|why| format!("bundle {}: {why}", bundle.digest))?;
        }
    }
    let order = layout.push_order("bundle").map_err(|why| format!("bundle {}: {why}", bundle.digest))?;
    if order.tagged.digest != bundle.digest {
        return Err(format!(
            "bundle {}: its layout holds {} instead (was the file edited?)",
            bundle.digest, order.tagged.digest
        ));
    }
    Ok((bundle.digest, layout))
}

/// A saved plan, read back: what `apply FILE` checks and applies.
#[derive(Debug)]
pub struct SavedPlan {
    pub fabric: String,
    pub basis: Basis,
    pub has_changes: bool,
    /// What to create, update or replace, with the bodies to send, in apply order.
    pub desired: Vec<Planned>,
    /// What to delete, in order.
    pub deletes: Vec<ResourceId>,
    /// The Secrets apply makes.
    pub secrets: Vec<ApplySecret>,
    /// What the plan does to each resource it changes (create, update,
    /// replace, delete, keep), as it was planned.
    pub actions: BTreeMap<ResourceId, Action>,
    /// The layouts of the device bundles it pushes, by digest.
    pub bundles: crate::apply::oci::BundleLayouts,
}

/// A resource of a saved plan, as the build made it: its body byte for
/// byte (its hash is of these bytes).
#[derive(Debug)]
pub struct Planned {
    pub id: ResourceId,
    pub declaration: Option<String>,
    pub patch: bool,
    pub depends_on: Vec<ResourceId>,
    pub content_sha256: String,
    pub body: Box<RawValue>,
}

impl Planned {
    /// A built resource as a plan holds it.
    #[must_use]
    pub fn of(resource: &sovereign_desired::Resource) -> Planned {
        Planned {
            id: resource.id.clone(),
            declaration: resource.declaration.as_deref().map(str::to_owned),
            patch: resource.patch,
            depends_on: resource.depends_on.iter().cloned().collect(),
            content_sha256: resource.hash.clone(),
            // A resource's JSON is serde_json's own output: valid.
            body: RawValue::from_string(resource.json.to_string()).unwrap_or_else(|_| empty_object()),
        }
    }
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| unreachable!("`{{}}` is JSON"))
}

#[derive(Deserialize)]
struct StoredPlan<'a> {
    fabric: String,
    basis: Basis,
    has_changes: bool,
    #[serde(borrow)]
    changes: Vec<StoredChange<'a>>,
    #[serde(borrow)]
    desired: Option<Vec<StoredPlanned<'a>>>,
    #[serde(default)]
    secrets: Vec<SecretJson>,
    #[serde(default)]
    bundles: Vec<BundleJson>,
}

#[derive(Deserialize)]
struct StoredChange<'a> {
    #[serde(flatten, borrow)]
    parts: IdParts<'a>,
    action: Action,
}

#[derive(Deserialize)]
struct StoredPlanned<'a> {
    #[serde(flatten, borrow)]
    parts: IdParts<'a>,
    #[serde(default)]
    declaration: Option<String>,
    #[serde(default)]
    patch: bool,
    #[serde(borrow)]
    depends_on: Vec<IdParts<'a>>,
    content_sha256: String,
    body: Box<RawValue>,
}

/// Reads a saved plan; `Err` says why it is not one, or not a sound one.
pub fn read(path: &Path) -> Result<SavedPlan, String> {
    #[derive(Deserialize)]
    struct Version {
        format_version: u32,
    }
    let not = |e: &dyn std::fmt::Display| format!("{} is not a saved plan: {e}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the plan {}: {e}", path.display()))?;
    let version: Version = serde_json::from_str(&text).map_err(|e| not(&e))?;
    if version.format_version != PLAN_FORMAT {
        return Err(format!(
            "{} has plan format {}, and this sovereign reads {PLAN_FORMAT}: make the plan again with this sovereign",
            path.display(),
            version.format_version
        ));
    }
    let stored: StoredPlan<'_> = serde_json::from_str(&text).map_err(|e| not(&e))?;
    let Some(planned) = stored.desired else {
        return Err(format!(
            "{} is the output of `plan --json`, which has no bodies to apply: save a plan with `plan -o FILE`",
            path.display()
        ));
    };
    let mut desired = Vec::with_capacity(planned.len());
    for p in planned {
        let id = p.parts.into_id().map_err(|e| not(&e))?;
        if sha256(p.body.get()) != p.content_sha256 {
            return Err(not(&format!("the body of {id} does not have its content_sha256 (was the file edited?)")));
        }
        let depends_on =
            p.depends_on.into_iter().map(IdParts::into_id).collect::<Result<_, _>>().map_err(|e| not(&e))?;
        desired.push(Planned {
            id,
            declaration: p.declaration,
            patch: p.patch,
            depends_on,
            content_sha256: p.content_sha256,
            body: p.body,
        });
    }
    let mut deletes = Vec::new();
    let mut actions = BTreeMap::new();
    for change in stored.changes {
        let id = change.parts.into_id().map_err(|e| not(&e))?;
        if change.action == Action::Delete {
            deletes.push(id.clone());
        }
        actions.insert(id, change.action);
    }
    let secrets =
        stored.secrets.into_iter().map(SecretJson::into_secret).collect::<Result<_, _>>().map_err(|e| not(&e))?;
    let bundles = stored.bundles.into_iter().map(read_bundle).collect::<Result<_, _>>().map_err(|e| not(&e))?;
    Ok(SavedPlan {
        bundles,
        fabric: stored.fabric,
        basis: stored.basis,
        has_changes: stored.has_changes,
        desired,
        deletes,
        secrets,
        actions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basis(files: &[(&str, &str)], serial: Option<u64>) -> Basis {
        let files = files.iter().map(|(p, t)| ((*p).to_owned(), sha256(t))).collect();
        let mut basis = Basis::new(files, None, false);
        basis.state = serial.map(|serial| StateVersion { lineage: "l1".into(), serial });
        basis
    }

    #[test]
    fn a_stale_plan_says_what_changed_since() {
        let then = basis(&[("fabric.kdl", "a"), ("sites.kdl", "b")], Some(3));
        assert!(then.changes_since(&then.clone()).is_empty());
        let now = basis(&[("fabric.kdl", "a2"), ("more.kdl", "c")], Some(5));
        let said = then.changes_since(&now);
        assert_eq!(
            said,
            [
                "the state changed since: serial 3 when it was made, 5 now (another apply ran)",
                "the spec file fabric.kdl changed",
                "the spec file sites.kdl is gone or cannot be read",
                "the spec file more.kdl was added to the spec",
            ]
        );
        let mut other = then.clone();
        other.state = Some(StateVersion { lineage: "l2".into(), serial: 3 });
        assert!(then.changes_since(&other)[0].contains("another state"));
        assert!(basis(&[], None).changes_since(&basis(&[], Some(1)))[0].contains("was empty"));
    }
}
