//! The REST API over the store: routing, verbs, query parameters, and
//! errors as `Status` objects with the codes and reasons the real server
//! uses (https://kubernetes.io/docs/reference/using-api/api-concepts/).

use std::sync::Mutex;

use serde_json::{Value, json};

use crate::fields;
use crate::kinds::{self, Kind};
use crate::store::{Key, Part, Store, Write};

/// An HTTP request, as the server read it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target as sent (path and query, still encoded).
    pub target: String,
    /// Every header as sent, in order.
    pub headers: Vec<(String, String)>,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub content_type: String,
    pub user_agent: String,
    pub body: Vec<u8>,
}

impl Request {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

pub struct Response {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<u64>,
}

impl Response {
    fn ok(body: Value) -> Response {
        Response { status: 200, body, retry_after: None }
    }
}

/// An error as the API server reports it.
#[derive(Debug)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String, details: Value) -> ApiError {
        ApiError { code, reason, message, details }
    }

    fn details(kind: &Kind, name: &str) -> Value {
        json!({"name": name, "group": kind.group, "kind": kind.plural})
    }

    pub fn not_found(kind: &Kind, name: &str) -> ApiError {
        let message = format!("{} \"{name}\" not found", resource_word(kind));
        ApiError::new(404, "NotFound", message, ApiError::details(kind, name))
    }

    pub fn already_exists(kind: &Kind, name: &str) -> ApiError {
        let message = format!("{} \"{name}\" already exists", resource_word(kind));
        ApiError::new(409, "AlreadyExists", message, ApiError::details(kind, name))
    }

    pub fn modified(kind: &Kind, name: &str) -> ApiError {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            resource_word(kind)
        );
        ApiError::new(409, "Conflict", message, ApiError::details(kind, name))
    }

    pub fn conflicts(kind: &Kind, name: &str, conflicts: &[(String, fields::Path)]) -> ApiError {
        let version = kind.api_version();
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(manager, path)| {
                json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{manager}\" using {version}"), "field": fields::display(path)})
            })
            .collect();
        let lines: Vec<String> = conflicts
            .iter()
            .map(|(manager, path)| format!("conflict with \"{manager}\" using {version}: {}", fields::display(path)))
            .collect();
        let plural = if conflicts.len() == 1 { "" } else { "s" };
        let message = if lines.len() == 1 {
            format!("Apply failed with 1 conflict: {}", lines[0])
        } else {
            format!("Apply failed with {} conflict{plural}: {}", lines.len(), lines.join("\n"))
        };
        let mut details = ApiError::details(kind, name);
        details["causes"] = Value::Array(causes);
        ApiError::new(409, "Conflict", message, details)
    }

    pub fn namespace_missing(namespace: &str) -> ApiError {
        let message = format!("namespaces \"{namespace}\" not found");
        ApiError::new(404, "NotFound", message, json!({"name": namespace, "kind": "namespaces"}))
    }

    pub fn namespace_terminating(namespace: &str) -> ApiError {
        let message = format!("unable to create new content in namespace {namespace} because it is being terminated");
        ApiError::new(403, "Forbidden", message, json!({"name": namespace, "kind": "namespaces"}))
    }

    pub fn invalid(kind: &Kind, name: &str, problems: Vec<(String, String)>) -> ApiError {
        let causes: Vec<Value> = problems
            .iter()
            .map(|(field, message)| json!({"reason": "FieldValueInvalid", "message": message, "field": field}))
            .collect();
        let text: Vec<String> =
            problems.iter().map(|(field, message)| format!("{}: {message}", field.trim_start_matches('.'))).collect();
        let message = format!("{}.{} \"{name}\" is invalid: {}", kind.kind, kind.group, text.join(", "));
        let mut details = ApiError::details(kind, name);
        details["causes"] = Value::Array(causes);
        ApiError::new(422, "Invalid", message, details)
    }

    pub fn strict_decoding(unknown: &[String]) -> ApiError {
        ApiError::new(400, "BadRequest", format!("strict decoding error: {}", unknown.join(", ")), json!({}))
    }

    pub fn bad_request(message: String) -> ApiError {
        ApiError::new(400, "BadRequest", message, json!({}))
    }

    pub fn internal(message: String) -> ApiError {
        ApiError::new(500, "InternalError", message, json!({}))
    }

    fn status(&self) -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason, "details": self.details, "code": self.code})
    }
}

fn resource_word(kind: &Kind) -> String {
    if kind.group.is_empty() { kind.plural.clone() } else { format!("{}.{}", kind.plural, kind.group) }
}

pub fn handle(store: &Mutex<Store>, request: &Request) -> Response {
    // Decoded before the store is locked, as a real server decodes before
    // it goes to storage: requests do not queue behind each other's parsing.
    let mut body = Body::of(request);
    let mut store = match store.lock() {
        Ok(store) => store,
        Err(poisoned) => poisoned.into_inner(),
    };
    match route(&mut store, request, &mut body) {
        Ok(response) => response,
        Err(error) => Response { status: error.code, body: error.status(), retry_after: None },
    }
}

fn route(store: &mut Store, request: &Request, body: &mut Body) -> Result<Response, ApiError> {
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').filter(|part| !part.is_empty()).collect();
    let get = request.method == "GET";
    match segments.as_slice() {
        ["version"] if get => Ok(Response::ok(json!({
            "major": "1", "minor": "34", "gitVersion": "v1.34.0+sovereign-double", "platform": "linux/amd64"
        }))),
        ["healthz" | "readyz" | "livez"] if get => Ok(Response::ok(json!("ok"))),
        ["api"] if get => Ok(Response::ok(kinds::core_versions())),
        ["apis"] if get => Ok(Response::ok(kinds::group_list(&store.kinds))),
        ["api", version] if get => discovery(store, "", version),
        ["apis", group, version] if get => discovery(store, group, version),
        ["api", version, rest @ ..] => resource(store, request, body, "", version, rest),
        ["apis", group, version, rest @ ..] => resource(store, request, body, group, version, rest),
        _ => Err(ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({} {})", request.method, request.path),
            json!({}),
        )),
    }
}

fn discovery(store: &Store, group: &str, version: &str) -> Result<Response, ApiError> {
    kinds::resource_list(&store.kinds, group, version).map(Response::ok).ok_or_else(|| {
        ApiError::new(404, "NotFound", "the server could not find the requested resource".into(), json!({}))
    })
}

/// `[namespaces, NS,] PLURAL [, NAME [, status]]`
fn resource(
    store: &mut Store,
    request: &Request,
    body: &mut Body,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Response, ApiError> {
    let (namespace, rest) = match rest {
        ["namespaces", namespace, plural, rest @ ..] if !matches!(*plural, "status" | "finalize") => {
            (Some(*namespace), [&[*plural][..], rest].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let (plural, name, sub) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => {
            return Err(ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource".into(),
                json!({}),
            ));
        }
    };
    let not_served = || {
        ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({plural} in {group}/{version})"),
            json!({}),
        )
    };
    let kind = store.kind(group, version, plural).ok_or_else(not_served)?;
    if kind.namespaced != namespace.is_some() && !(name.is_none() && request.method == "GET") {
        return Err(not_served());
    }
    let part = match sub {
        None => Part::Main,
        Some("status") if kind.status => Part::Status,
        Some(_) => return Err(not_served()),
    };
    let manager = request
        .param("fieldManager")
        .map(str::to_owned)
        .unwrap_or_else(|| request.user_agent.split('/').next().unwrap_or("unknown").to_owned());
    let write = Write { manager: &manager, dry_run: request.param("dryRun") == Some("All"), part };
    let key = |name: &str| -> Key { (group.into(), plural.into(), namespace.unwrap_or("").into(), name.into()) };
    match (request.method.as_str(), name) {
        ("GET", None) => {
            if request.param("watch").is_some_and(|watch| watch == "true" || watch == "1") {
                return Err(ApiError::new(
                    405,
                    "MethodNotAllowed",
                    "the test double does not serve watches; poll instead".into(),
                    json!({}),
                ));
            }
            list(store, request, &kind, namespace)
        }
        ("GET", Some(name)) => {
            store.objects.get(&key(name)).cloned().map(Response::ok).ok_or_else(|| ApiError::not_found(&kind, name))
        }
        ("POST", None) => {
            let mut object = body.take()?;
            check_identity(&kind, &object, namespace, None)?;
            if object.pointer("/metadata/name").is_none()
                && let Some(prefix) = object.pointer("/metadata/generateName").and_then(Value::as_str)
            {
                let name = format!("{prefix}{:05x}", store.revision() % 0xfffff);
                object["metadata"]["name"] = json!(name);
            }
            let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_owned();
            object["metadata"]["namespace"] = namespace.map_or(Value::Null, |ns| json!(ns));
            strip_null_namespace(&mut object);
            let created = store.create(&kind, key(&name), object, &write)?;
            Ok(Response { status: 201, body: created, retry_after: None })
        }
        ("PUT", Some(name)) => {
            let mut object = body.take()?;
            check_identity(&kind, &object, namespace, Some(name))?;
            let expected = object.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(str::to_owned);
            set_namespace(&mut object, namespace);
            store.update(&kind, key(name), object, &write, expected.as_deref()).map(Response::ok)
        }
        ("PATCH", Some(name)) => {
            let patch = body.take()?;
            let content_type = request.content_type.split(';').next().unwrap_or("").trim();
            match content_type {
                "application/apply-patch+yaml" => {
                    if request.param("fieldManager").is_none() {
                        return Err(ApiError::bad_request("PATCH, fieldManager is required for apply requests".into()));
                    }
                    check_identity(&kind, &patch, namespace, Some(name))?;
                    let mut patch = patch;
                    set_namespace(&mut patch, namespace);
                    let force = request.param("force") == Some("true");
                    let key = key(name);
                    let exists = store.objects.contains_key(&key);
                    let object = store.apply(&kind, key, patch, &write, force)?;
                    Ok(Response { status: if exists { 200 } else { 201 }, body: object, retry_after: None })
                }
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    let live =
                        store.objects.get(&key(name)).cloned().ok_or_else(|| ApiError::not_found(&kind, name))?;
                    let expected =
                        patch.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(str::to_owned);
                    let mut object = live;
                    merge_patch(&mut object, &patch);
                    store.update(&kind, key(name), object, &write, expected.as_deref()).map(Response::ok)
                }
                other => Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!(
                        "the test double does not take {other:?} patches (apply, merge and strategic merge patches only)"
                    ),
                    json!({}),
                )),
            }
        }
        ("DELETE", Some(name)) => {
            let options: Value = if request.body.is_empty() { json!({}) } else { body.take()? };
            let precondition = options.pointer("/preconditions/resourceVersion").and_then(Value::as_str);
            let dry_run = write.dry_run
                || options
                    .get("dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|runs| runs.iter().any(|run| run == "All"));
            let object = store.delete(&kind, &key(name), dry_run, precondition)?;
            if object.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(Response::ok(object));
            }
            Ok(Response::ok(json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": kind.group, "kind": kind.plural,
                            "uid": object.pointer("/metadata/uid").cloned().unwrap_or(Value::Null)}
            })))
        }
        (method, _) => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} is not allowed on {}", request.path),
            json!({}),
        )),
    }
}

/// A request's body, decoded once; what routing finds wrong comes first.
struct Body(Option<Result<Value, ApiError>>);

impl Body {
    fn of(request: &Request) -> Body {
        let writes = matches!(request.method.as_str(), "POST" | "PUT" | "PATCH");
        let decoded = writes || (request.method == "DELETE" && !request.body.is_empty());
        Body(decoded.then(|| decode(request)))
    }

    fn take(&mut self) -> Result<Value, ApiError> {
        self.0.take().unwrap_or_else(|| Err(ApiError::bad_request("the request has no body".into())))
    }
}

fn decode(request: &Request) -> Result<Value, ApiError> {
    let parsed = serde_json::from_slice::<Value>(&request.body).or_else(|_| {
        let text = std::str::from_utf8(&request.body).map_err(|error| error.to_string())?;
        serde_saphyr::from_str::<Value>(text).map_err(|error| error.to_string())
    });
    match parsed {
        Ok(value) if value.is_object() => Ok(value),
        Ok(_) => Err(ApiError::bad_request("the body must be an object".into())),
        Err(error) => Err(ApiError::bad_request(format!("the body does not decode: {error}"))),
    }
}

/// The body's kind, apiVersion, name and namespace must match the URL.
fn check_identity(kind: &Kind, object: &Value, namespace: Option<&str>, name: Option<&str>) -> Result<(), ApiError> {
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
    if text("/kind") != Some(kind.kind.as_str()) || text("/apiVersion") != Some(kind.api_version().as_str()) {
        return Err(ApiError::bad_request(format!(
            "the body is a {}/{}, and this URL serves {} {}",
            text("/apiVersion").unwrap_or("?"),
            text("/kind").unwrap_or("?"),
            kind.api_version(),
            kind.kind
        )));
    }
    if let (Some(name), Some(given)) = (name, text("/metadata/name"))
        && given != name
    {
        return Err(ApiError::bad_request("the name of the object does not match the name on the URL".into()));
    }
    if let (Some(namespace), Some(given)) = (namespace, text("/metadata/namespace"))
        && given != namespace
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request".into(),
        ));
    }
    Ok(())
}

fn set_namespace(object: &mut Value, namespace: Option<&str>) {
    if let (Some(namespace), Some(metadata)) = (namespace, object.get_mut("metadata").and_then(Value::as_object_mut)) {
        metadata.insert("namespace".into(), json!(namespace));
    }
}

fn strip_null_namespace(object: &mut Value) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
        && metadata.get("namespace").is_some_and(Value::is_null)
    {
        metadata.remove("namespace");
    }
}

fn list(store: &Store, request: &Request, kind: &Kind, namespace: Option<&str>) -> Result<Response, ApiError> {
    let selector = request.param("labelSelector").map(Selector::parse).transpose()?;
    let limit = request.param("limit").and_then(|limit| limit.parse::<usize>().ok()).filter(|&limit| limit > 0);
    let after = request.param("continue").filter(|token| !token.is_empty());
    let mut items = Vec::new();
    let mut next = None;
    for (key, object) in &store.objects {
        if key.0 != kind.group || key.1 != kind.plural || namespace.is_some_and(|namespace| key.2 != namespace) {
            continue;
        }
        let position = format!("{}/{}", key.2, key.3);
        if after.is_some_and(|after| position.as_str() <= after) {
            continue;
        }
        if selector.as_ref().is_some_and(|selector| !selector.matches(object.pointer("/metadata/labels"))) {
            continue;
        }
        if limit.is_some_and(|limit| items.len() == limit) {
            next = Some(format!(
                "{}/{}",
                items
                    .last()
                    .and_then(|item: &Value| item.pointer("/metadata/namespace"))
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                items
                    .last()
                    .and_then(|item: &Value| item.pointer("/metadata/name"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            ));
            break;
        }
        items.push(object.clone());
    }
    let mut metadata = json!({"resourceVersion": store.revision().to_string()});
    if let Some(next) = next {
        metadata["continue"] = json!(next);
    }
    Ok(Response::ok(
        json!({"kind": format!("{}List", kind.kind), "apiVersion": kind.api_version(), "metadata": metadata, "items": items}),
    ))
}

/// A label selector: `a=b,c!=d,e,!f,g in (h,i),j notin (k)`.
struct Selector(Vec<Requirement>);

enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl Selector {
    fn parse(text: &str) -> Result<Selector, ApiError> {
        let mut requirements = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            // Split at the next comma outside parentheses.
            let mut depth = 0;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    c == ',' && depth == 0
                })
                .map_or(rest.len(), |(index, _)| index);
            let part = rest[..end].trim();
            rest = rest.get(end + 1..).unwrap_or("").trim();
            let bad = || ApiError::bad_request(format!("unable to parse requirement {part:?} of the label selector"));
            let set = |values: &str| -> Result<Vec<String>, ApiError> {
                let inner = values.trim().strip_prefix('(').and_then(|v| v.strip_suffix(')')).ok_or_else(bad)?;
                Ok(inner.split(',').map(|value| value.trim().to_owned()).collect())
            };
            let requirement = if let Some((key, values)) = part.split_once(" notin ") {
                Requirement::NotIn(key.trim().into(), set(values)?)
            } else if let Some((key, values)) = part.split_once(" in ") {
                Requirement::In(key.trim().into(), set(values)?)
            } else if let Some((key, value)) = part.split_once("!=") {
                Requirement::NotEquals(key.trim().into(), value.trim().into())
            } else if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(key.trim().into(), value.trim().into())
            } else if let Some(key) = part.strip_prefix('!') {
                Requirement::Absent(key.trim().into())
            } else if !part.is_empty() && !part.contains(' ') {
                Requirement::Exists(part.into())
            } else {
                return Err(bad());
            };
            requirements.push(requirement);
        }
        Ok(Selector(requirements))
    }

    fn matches(&self, labels: Option<&Value>) -> bool {
        let label = |key: &str| labels.and_then(|labels| labels.get(key)).and_then(Value::as_str);
        self.0.iter().all(|requirement| match requirement {
            Requirement::Equals(key, value) => label(key) == Some(value.as_str()),
            Requirement::NotEquals(key, value) => label(key) != Some(value.as_str()),
            Requirement::Exists(key) => label(key).is_some(),
            Requirement::Absent(key) => label(key).is_none(),
            Requirement::In(key, values) => label(key).is_some_and(|found| values.iter().any(|value| value == found)),
            Requirement::NotIn(key, values) => {
                !label(key).is_some_and(|found| values.iter().any(|value| value == found))
            }
        })
    }
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let map = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}
