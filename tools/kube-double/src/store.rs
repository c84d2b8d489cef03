//! The objects of the double's cluster and the writes the API allows on
//! them: create, replace, server-side apply, status writes and delete, each
//! keeping `resourceVersion`, `generation`, `uid` and `managedFields` the
//! way the API server does.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::ApiError;
use crate::fields::{self, FieldSet};
use crate::kinds::{self, Kind};
use crate::schema::{Node, Schemas};

/// An object's address: group, plural, namespace ("" for cluster-scoped), name.
pub type Key = (String, String, String, String);

pub struct Store {
    /// Shared, so that a request takes its kind without copying it (a
    /// custom resource's kind holds its whole schema).
    pub kinds: Vec<Arc<Kind>>,
    pub objects: BTreeMap<Key, Value>,
    pub schemas: Schemas,
    revision: u64,
    uids: u64,
    /// Seconds since the double started, for timestamps.
    pub started: std::time::Instant,
    /// The revision at which the stand-in last found nothing to do.
    pub settled_at: Option<u64>,
    /// Whether the garbage collector has work: an object was removed, or
    /// one with owners was written, since it last looked. Without this it
    /// would walk every object on every tick.
    pub garbage_due: bool,
}

/// Which part of an object a write is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
}

pub struct Write<'a> {
    pub manager: &'a str,
    pub dry_run: bool,
    pub part: Part,
}

impl Store {
    pub fn new(schemas: Schemas) -> Store {
        Store {
            kinds: kinds::built_in().into_iter().map(Arc::new).collect(),
            objects: BTreeMap::new(),
            schemas,
            revision: 1,
            uids: 0,
            started: std::time::Instant::now(),
            settled_at: None,
            garbage_due: false,
        }
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn kind(&self, group: &str, version: &str, plural: &str) -> Option<Arc<Kind>> {
        self.kinds.iter().find(|kind| kind.group == group && kind.version == version && kind.plural == plural).cloned()
    }

    pub fn kind_of(&self, api_version: &str, kind: &str) -> Option<Arc<Kind>> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.kinds.iter().find(|known| known.group == group && known.version == version && known.kind == kind).cloned()
    }

    fn now(&self) -> String {
        // A fixed epoch plus the double's uptime: monotonic, and RFC 3339.
        let seconds = 1_767_225_600 + self.started.elapsed().as_secs();
        let (days, rest) = (seconds / 86_400, seconds % 86_400);
        let (year, month, day) = civil(days as i64);
        format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest / 60 % 60, rest % 60)
    }

    /// Creates an object (POST).
    pub fn create(&mut self, kind: &Kind, key: Key, object: Value, write: &Write<'_>) -> Result<Value, ApiError> {
        self.create_as(kind, key, object, write, None)
    }

    /// Creates an object: by a POST (the writer owns what it sent, as an
    /// update), or by an apply (`applied`: the fields the apply owns).
    fn create_as(
        &mut self,
        kind: &Kind,
        key: Key,
        mut object: Value,
        write: &Write<'_>,
        applied: Option<FieldSet>,
    ) -> Result<Value, ApiError> {
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(kind, &key.3));
        }
        self.check_namespace(kind, &key)?;
        let metadata = metadata_mut(&mut object);
        for field in ["uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "deletionTimestamp"]
        {
            metadata.remove(field);
        }
        if kind.status && write.part == Part::Main {
            // Status is written through its subresource only.
            object.as_object_mut().map(|map| map.remove("status"));
        }
        // Defaulted fields belong to nobody, as on the real server.
        let (operation, set) = match applied {
            Some(applied) => ("Apply", applied),
            None => ("Update", fields::set_of(&object, self.schemas.node(kind), !kind.status)),
        };
        default(kind, &mut object, self.uids);
        self.validate(kind, &object)?;
        let now = self.now();
        let mut managed = Managed::default();
        managed.set(write.manager, operation, &api_version(&object), &now, set, write.part);
        if write.dry_run {
            // A dry-run apply answers with the fields it would own; a dry-run POST with none yet.
            if operation == "Apply" {
                managed.store(&mut object);
            }
            return Ok(object);
        }
        self.uids += 1;
        self.revision += 1;
        let metadata = metadata_mut(&mut object);
        metadata.insert("uid".into(), Value::String(uid(self.uids)));
        metadata.insert("resourceVersion".into(), Value::String(self.revision.to_string()));
        metadata.insert("generation".into(), json!(1));
        metadata.insert("creationTimestamp".into(), Value::String(now));
        managed.store(&mut object);
        self.insert(key, object.clone());
        Ok(object)
    }

    fn insert(&mut self, key: Key, object: Value) {
        let owned =
            object.pointer("/metadata/ownerReferences").and_then(Value::as_array).is_some_and(|o| !o.is_empty());
        self.garbage_due |= owned;
        self.objects.insert(key, object);
    }

    fn remove(&mut self, key: &Key) -> Option<Value> {
        let removed = self.objects.remove(key);
        self.garbage_due |= removed.is_some();
        removed
    }

    /// Server-side apply of `config` by `manager` (created if missing).
    pub fn apply(
        &mut self,
        kind: &Kind,
        key: Key,
        config: Value,
        write: &Write<'_>,
        force: bool,
    ) -> Result<Value, ApiError> {
        let schema = self.schemas.node(kind);
        let mut config = config;
        match write.part {
            Part::Main if kind.status => {
                config.as_object_mut().map(|map| map.remove("status"));
            }
            Part::Main => {}
            // A status apply changes the status alone.
            Part::Status => {
                let status = config.get("status").cloned().unwrap_or_else(|| json!({}));
                config = json!({"apiVersion": config.get("apiVersion"), "kind": config.get("kind"), "status": status});
            }
        }
        let applied = restrict(fields::set_of(&config, schema, true), write.part, kind);
        let Some(live) = self.objects.get(&key).cloned() else {
            if write.part == Part::Status {
                return Err(ApiError::not_found(kind, &key.3));
            }
            return self.create_as(kind, key, config, write, Some(applied));
        };
        let mut managed = Managed::read(&live);
        let conflicts = managed.conflicts(write.manager, &applied, &live, &config, schema);
        if !conflicts.is_empty() && !force {
            return Err(ApiError::conflicts(kind, &key.3, &conflicts));
        }
        for (manager, path) in &conflicts {
            managed.release(manager, path);
        }
        let previous = managed.owned_by(write.manager, "Apply", write.part);
        let others = managed.owned_except(write.manager);
        let mut object = live.clone();
        for path in previous.difference(&applied).filter(|path| !others.contains(*path)) {
            fields::remove(&mut object, path, schema);
        }
        fields::merge(&mut object, &config, schema);
        let now = self.now();
        managed.set(write.manager, "Apply", &api_version(&config), &now, applied, write.part);
        self.commit(kind, key, live, object, managed, write)
    }

    /// A whole-object write (PUT, or a merge patch already applied to the
    /// live object): the writer takes the fields it changed.
    pub fn update(
        &mut self,
        kind: &Kind,
        key: Key,
        mut object: Value,
        write: &Write<'_>,
        expect: Option<&str>,
    ) -> Result<Value, ApiError> {
        let Some(live) = self.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(kind, &key.3));
        };
        let current = live.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("");
        if let Some(expected) = expect.filter(|expected| !expected.is_empty())
            && expected != current
        {
            return Err(ApiError::modified(kind, &key.3));
        }
        // What the writer may not change: identity, and the other part.
        let metadata = metadata_mut(&mut object);
        for field in ["uid", "creationTimestamp", "generation", "resourceVersion", "deletionTimestamp"] {
            match live.pointer(&format!("/metadata/{field}")) {
                Some(value) => metadata.insert(field.into(), value.clone()),
                None => metadata.remove(field),
            };
        }
        metadata.remove("managedFields");
        if kind.status {
            let map = object.as_object_mut().expect("objects are maps");
            match write.part {
                Part::Main => match live.get("status") {
                    Some(status) => map.insert("status".into(), status.clone()),
                    None => map.remove("status"),
                },
                Part::Status => {
                    let status = map.remove("status");
                    let mut kept = live.clone();
                    let kept_map = kept.as_object_mut().expect("objects are maps");
                    kept_map.remove("status");
                    if let Some(status) = status {
                        kept_map.insert("status".into(), status);
                    }
                    object = kept;
                    metadata_mut(&mut object).remove("managedFields");
                    None
                }
            };
        }
        let schema = self.schemas.node(kind);
        let before = fields::set_of(&live, schema, true);
        let after = fields::set_of(&object, schema, true);
        let changed: FieldSet = after
            .iter()
            .filter(|path| {
                !before.contains(*path) || fields::get(&live, path, schema) != fields::get(&object, path, schema)
            })
            .cloned()
            .collect();
        let mut managed = Managed::read(&live);
        managed.take(write.manager, changed, &after, &api_version(&object), &self.now(), write.part);
        self.commit(kind, key, live, object, managed, write)
    }

    fn commit(
        &mut self,
        kind: &Kind,
        key: Key,
        live: Value,
        mut object: Value,
        managed: Managed,
        write: &Write<'_>,
    ) -> Result<Value, ApiError> {
        self.validate(kind, &object)?;
        managed.store(&mut object);
        if same_but_times(&live, &object) {
            return Ok(live);
        }
        if spec_of(&live) != spec_of(&object) {
            let generation = live.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
            metadata_mut(&mut object).insert("generation".into(), json!(generation + 1));
        }
        if write.dry_run {
            return Ok(object);
        }
        self.revision += 1;
        metadata_mut(&mut object).insert("resourceVersion".into(), Value::String(self.revision.to_string()));
        self.insert(key, object.clone());
        Ok(object)
    }

    /// Deletes an object; one with finalizers is only marked.
    pub fn delete(
        &mut self,
        kind: &Kind,
        key: &Key,
        dry_run: bool,
        precondition: Option<&str>,
    ) -> Result<Value, ApiError> {
        let Some(live) = self.objects.get(key).cloned() else {
            return Err(ApiError::not_found(kind, &key.3));
        };
        if let Some(expected) = precondition
            && live.pointer("/metadata/resourceVersion").and_then(Value::as_str) != Some(expected)
        {
            return Err(ApiError::modified(kind, &key.3));
        }
        if dry_run {
            return Ok(live);
        }
        let finalizers =
            live.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|list| !list.is_empty());
        let namespace = kind.kind == "Namespace" && kind.group.is_empty();
        if finalizers || namespace {
            if live.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(live);
            }
            let mut marked = live;
            metadata_mut(&mut marked).insert("deletionTimestamp".into(), Value::String(self.now()));
            if namespace {
                marked["status"] = json!({"phase": "Terminating"});
            }
            self.revision += 1;
            metadata_mut(&mut marked).insert("resourceVersion".into(), Value::String(self.revision.to_string()));
            self.insert(key.clone(), marked.clone());
            return Ok(marked);
        }
        self.revision += 1;
        self.remove(key);
        if kind.group == "apiextensions.k8s.io" && kind.kind == "CustomResourceDefinition" {
            self.forget_crd(&live);
        }
        Ok(live)
    }

    /// Removes a marked object for good (its finalizers ran).
    pub fn finalize(&mut self, key: &Key) {
        if self.remove(key).is_some() {
            self.revision += 1;
        }
    }

    /// Registers what an established CRD serves.
    pub fn register_crd(&mut self, crd: &Value) -> Result<(), String> {
        let kinds = kinds::of_crd(crd)?;
        for kind in kinds {
            self.schemas.forget(&kind);
            self.kinds.retain(|known| {
                !(known.group == kind.group && known.version == kind.version && known.plural == kind.plural)
            });
            self.kinds.push(Arc::new(kind));
        }
        Ok(())
    }

    fn forget_crd(&mut self, crd: &Value) {
        let Ok(kinds) = kinds::of_crd(crd) else { return };
        for kind in &kinds {
            self.kinds.retain(|known| !(known.group == kind.group && known.plural == kind.plural));
            self.objects.retain(|key, _| !(key.0 == kind.group && key.1 == kind.plural));
        }
    }

    fn check_namespace(&self, kind: &Kind, key: &Key) -> Result<(), ApiError> {
        if !kind.namespaced {
            return Ok(());
        }
        let namespace = (String::new(), "namespaces".to_owned(), String::new(), key.2.clone());
        match self.objects.get(&namespace) {
            None => Err(ApiError::namespace_missing(&key.2)),
            Some(object) if object.pointer("/metadata/deletionTimestamp").is_some() => {
                Err(ApiError::namespace_terminating(&key.2))
            }
            Some(_) => Ok(()),
        }
    }

    fn validate(&self, kind: &Kind, object: &Value) -> Result<(), ApiError> {
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        if let Some(reason) = invalid_name(kind, name) {
            return Err(ApiError::invalid(kind, name, vec![(".metadata.name".into(), reason)]));
        }
        let violations = self.schemas.validate(kind, object).map_err(ApiError::internal)?;
        if violations.is_empty() {
            return Ok(());
        }
        if violations.iter().any(|violation| violation.unknown) {
            let unknown: Vec<String> = violations
                .iter()
                .filter(|violation| violation.unknown)
                .map(|violation| format!("{}: {}", violation.field, violation.message))
                .collect();
            return Err(ApiError::strict_decoding(&unknown));
        }
        Err(ApiError::invalid(
            kind,
            name,
            violations.into_iter().map(|violation| (violation.field, violation.message)).collect(),
        ))
    }
}

/// Server defaults the double fills in: only what clients read back.
fn default(kind: &Kind, object: &mut Value, serial: u64) {
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_owned();
    match (kind.group.as_str(), kind.kind.as_str()) {
        ("", "Namespace") => {
            metadata_mut(object)
                .entry("labels")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .map(|labels| labels.insert("kubernetes.io/metadata.name".into(), Value::String(name)));
            object["spec"] = json!({"finalizers": ["kubernetes"]});
            object["status"] = json!({"phase": "Active"});
        }
        ("", "Service") => {
            let headless = object.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None");
            let spec = object.as_object_mut().and_then(|map| map.get_mut("spec")).and_then(Value::as_object_mut);
            if let Some(spec) = spec {
                spec.entry("type").or_insert(json!("ClusterIP"));
                if !headless {
                    let ip = format!("10.43.{}.{}", (serial / 250) % 250, serial % 250 + 2);
                    spec.insert("clusterIP".into(), json!(ip));
                    spec.insert("clusterIPs".into(), json!([ip]));
                }
            }
        }
        _ => {}
    }
}

fn invalid_name(kind: &Kind, name: &str) -> Option<String> {
    let label = matches!((kind.group.as_str(), kind.kind.as_str()), ("", "Namespace" | "Service"));
    let limit = if label { 63 } else { 253 };
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (!label && c == '.');
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if kind.kind == "Node" || kind.group == "rbac.authorization.k8s.io" {
        // Node and RBAC names are path segments, not DNS names.
        return (name.is_empty() || name.contains('/')).then(|| "a name must be non-empty and without '/'".into());
    }
    if name.is_empty() {
        return Some("name or generateName is required".into());
    }
    if name.len() > limit
        || !name.chars().all(allowed)
        || !edge_ok(name.chars().next())
        || !edge_ok(name.chars().last())
    {
        let what = if label { "an RFC 1123 label" } else { "an RFC 1123 subdomain" };
        return Some(format!(
            "a lowercase {what} must consist of lower case alphanumeric characters, '-'{}, start and end with an alphanumeric character, and be at most {limit} characters",
            if label { "" } else { " or '.'" }
        ));
    }
    None
}

/// The fields a write to one part may own.
fn restrict(set: FieldSet, part: Part, kind: &Kind) -> FieldSet {
    if !kind.status {
        return set;
    }
    let status = |path: &fields::Path| matches!(path.first(), Some(fields::Element::Field(name)) if name == "status");
    set.into_iter().filter(|path| (part == Part::Status) == status(path)).collect()
}

fn spec_of(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    copy
}

fn same_but_times(live: &Value, object: &Value) -> bool {
    let strip = |value: &Value| {
        let mut copy = value.clone();
        if let Some(Value::Array(entries)) = copy.pointer_mut("/metadata/managedFields") {
            entries.iter_mut().for_each(|entry| {
                entry.as_object_mut().map(|map| map.remove("time"));
            });
        }
        copy
    };
    strip(live) == strip(object)
}

pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = json!({});
    }
    let map = object.as_object_mut().expect("made an object above");
    let metadata = map.entry("metadata").or_insert_with(|| json!({}));
    if !metadata.is_object() {
        *metadata = json!({});
    }
    metadata.as_object_mut().expect("made an object above")
}

fn api_version(object: &Value) -> String {
    object.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_owned()
}

fn uid(serial: u64) -> String {
    let hex = format!("{serial:032x}");
    format!("{}-{}-4{}-8{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

/// Days since 1970-01-01 as a civil date (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// An object's `managedFields`, read into sets.
#[derive(Default)]
struct Managed {
    entries: Vec<Entry>,
}

struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    part: Part,
    set: FieldSet,
}

impl Managed {
    fn read(object: &Value) -> Managed {
        let entries = object.pointer("/metadata/managedFields").and_then(Value::as_array);
        let entries = entries
            .into_iter()
            .flatten()
            .map(|entry| {
                let text = |key: &str| entry.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
                Entry {
                    manager: text("manager"),
                    operation: text("operation"),
                    api_version: text("apiVersion"),
                    time: text("time"),
                    part: if text("subresource") == "status" { Part::Status } else { Part::Main },
                    set: entry.get("fieldsV1").map(fields::from_fields_v1).unwrap_or_default(),
                }
            })
            .collect();
        Managed { entries }
    }

    fn store(self, object: &mut Value) {
        let entries: Vec<Value> = self
            .entries
            .into_iter()
            .filter(|entry| !entry.set.is_empty())
            .map(|entry| {
                // Moved into a map, not through `json!`, which would copy
                // each value through a serializer.
                let mut value = Map::new();
                value.insert("manager".into(), Value::String(entry.manager));
                value.insert("operation".into(), Value::String(entry.operation));
                value.insert("apiVersion".into(), Value::String(entry.api_version));
                value.insert("time".into(), Value::String(entry.time));
                value.insert("fieldsType".into(), Value::String("FieldsV1".into()));
                value.insert("fieldsV1".into(), fields::to_fields_v1(&entry.set));
                if entry.part == Part::Status {
                    value.insert("subresource".into(), Value::String("status".into()));
                }
                Value::Object(value)
            })
            .collect();
        metadata_mut(object).insert("managedFields".into(), Value::Array(entries));
    }

    fn set(&mut self, manager: &str, operation: &str, api_version: &str, time: &str, set: FieldSet, part: Part) {
        self.entries.retain(|entry| !(entry.manager == manager && entry.operation == operation && entry.part == part));
        self.entries.push(Entry {
            manager: manager.into(),
            operation: operation.into(),
            api_version: api_version.into(),
            time: time.into(),
            part,
            set,
        });
    }

    fn owned_by(&self, manager: &str, operation: &str, part: Part) -> FieldSet {
        self.entries
            .iter()
            .filter(|entry| entry.manager == manager && entry.operation == operation && entry.part == part)
            .flat_map(|entry| entry.set.iter().cloned())
            .collect()
    }

    fn owned_except(&self, manager: &str) -> FieldSet {
        self.entries
            .iter()
            .filter(|entry| entry.manager != manager)
            .flat_map(|entry| entry.set.iter().cloned())
            .collect()
    }

    /// Fields `manager` applies that another manager owns with another value.
    fn conflicts(
        &self,
        manager: &str,
        applied: &FieldSet,
        live: &Value,
        config: &Value,
        schema: Option<Node<'_>>,
    ) -> Vec<(String, fields::Path)> {
        let mut conflicts = Vec::new();
        for entry in self.entries.iter().filter(|entry| entry.manager != manager) {
            for path in entry.set.intersection(applied) {
                if matches!(path.last(), Some(fields::Element::Key(_) | fields::Element::Value(_))) {
                    continue;
                }
                if fields::get(live, path, schema) != fields::get(config, path, schema) {
                    conflicts.push((entry.manager.clone(), path.clone()));
                }
            }
        }
        conflicts
    }

    fn release(&mut self, manager: &str, path: &fields::Path) {
        for entry in self.entries.iter_mut().filter(|entry| entry.manager == manager) {
            entry.set.remove(path);
        }
    }

    /// An update by `manager`: it takes the fields it changed, and nobody
    /// keeps a field the object no longer has.
    fn take(
        &mut self,
        manager: &str,
        changed: FieldSet,
        present: &FieldSet,
        api_version: &str,
        time: &str,
        part: Part,
    ) {
        for entry in &mut self.entries {
            entry.set.retain(|path| present.contains(path) && (entry.manager == manager || !changed.contains(path)));
        }
        let mut owned = self.owned_by(manager, "Update", part);
        owned.extend(changed);
        self.set(manager, "Update", api_version, time, owned, part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(20_454), (2026, 1, 1));
    }
}
