//! A registry's credentials, from the files Docker, Podman and skopeo
//! keep them in, and the challenges a registry answers 401 with.
//!
//! Facts: the `auths` map of `~/.docker/config.json` (docker/cli
//! `cli/config/configfile/file.go`: `auth` is base64 of `user:password`)
//! and containers-auth.json(5) (`$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, same shape); the token flow of
//! distribution's `docs/spec/auth/token.md` (a `Bearer` challenge names a
//! realm, a service and a scope; the realm answers `token` or
//! `access_token`). Credential helpers (`credHelpers`, `credsStore`) are
//! not run.

use std::path::PathBuf;

use serde_json::Value;

/// A user and password. Never printed: `Debug` shows the user only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

impl Credentials {
    #[must_use]
    pub fn new(username: String, password: String) -> Credentials {
        Credentials { username, password }
    }

    /// The `Authorization` value of HTTP basic authentication.
    pub(crate) fn basic(&self) -> String {
        format!("Basic {}", sovereign_desired::base64(format!("{}:{}", self.username, self.password).as_bytes()))
    }
}

/// The files looked in, in order: `$REGISTRY_AUTH_FILE`, the containers
/// auth file, then Docker's config.
#[must_use]
pub fn auth_files(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(file) = env("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(file));
    }
    if let Some(runtime) = env("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(runtime).join("containers/auth.json"));
    }
    match env("DOCKER_CONFIG") {
        Some(dir) => files.push(PathBuf::from(dir).join("config.json")),
        None => {
            if let Some(home) = env("HOME") {
                files.push(PathBuf::from(home).join(".docker/config.json"));
            }
        }
    }
    files
}

/// The credentials the first file that names `host` gives; `Ok(None)`
/// when none does. A file that cannot be read as JSON is an error naming
/// it (never quoting it).
pub fn credentials_for(host: &str, files: &[PathBuf]) -> Result<Option<Credentials>, String> {
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read the registry credentials in {}: {e}", file.display())),
        };
        let config: Value = serde_json::from_str(&text)
            .map_err(|_| format!("{} is not a JSON credentials file (its `auths` are read)", file.display()))?;
        let Some(auths) = config.get("auths").and_then(Value::as_object) else { continue };
        let entry = auths.iter().find(|(key, _)| names_host(key, host)).map(|(_, entry)| entry);
        let Some(auth) = entry.and_then(|e| e.get("auth")).and_then(Value::as_str) else { continue };
        let decoded = sovereign_desired::unbase64(auth.trim())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| format!("{}: the `auth` of {host} is not base64 of `user:password`", file.display()))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| format!("{}: the `auth` of {host} is not base64 of `user:password`", file.display()))?;
        return Ok(Some(Credentials::new(username.to_owned(), password.to_owned())));
    }
    Ok(None)
}

/// Whether an `auths` key (`host:port`, `https://host/v1/`) names `host`.
fn names_host(key: &str, host: &str) -> bool {
    let bare = key.trim_start_matches("https://").trim_start_matches("http://");
    let bare = bare.split('/').next().unwrap_or(bare);
    bare.eq_ignore_ascii_case(host)
}

/// What a 401 asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    /// A token from `realm`, for `service` and `scope` (either may be absent).
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Reads a `WWW-Authenticate` header (RFC 7235 §4.1, one challenge).
#[must_use]
pub fn challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
    let mut pairs = std::collections::HashMap::new();
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        pairs.insert(key.trim().to_ascii_lowercase(), value.to_owned());
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: pairs.remove("realm")?,
            service: pairs.remove("service"),
            scope: pairs.remove("scope"),
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_as_registries_send_them() {
        assert_eq!(challenge(r#"Basic realm="basic-realm""#), Some(Challenge::Basic));
        assert_eq!(
            challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            challenge("Bearer realm=https://h/t, service=h"),
            Some(Challenge::Bearer { realm: "https://h/t".into(), service: Some("h".into()), scope: None })
        );
        assert_eq!(challenge("Bearer service=x"), None);
        assert_eq!(challenge("Negotiate"), None);
        assert_eq!(challenge(r#"Bearer realm="unterminated"#), None);
    }

    #[test]
    fn credentials_come_from_the_first_file_that_names_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("auth.json");
        let second = dir.path().join("config.json");
        let auth = |user: &str, pass: &str| sovereign_desired::base64(format!("{user}:{pass}").as_bytes());
        std::fs::write(&first, format!(r#"{{"auths": {{"other:5000": {{"auth": "{}"}}}}}}"#, auth("o", "p"))).unwrap();
        std::fs::write(
            &second,
            format!(r#"{{"auths": {{"https://reg.example:5000/v1/": {{"auth": "{}"}}}}}}"#, auth("me", "pa:ss")),
        )
        .unwrap();
        let files = [dir.path().join("missing.json"), first.clone(), second];
        let found = credentials_for("reg.example:5000", &files).unwrap().unwrap();
        assert_eq!(found, Credentials::new("me".into(), "pa:ss".into()));
        assert!(!format!("{found:?}").contains("pa:ss"));
        assert_eq!(credentials_for("nowhere", &files).unwrap(), None);
        std::fs::write(&first, "SECRET-CANARY not json").unwrap();
        let error = credentials_for("reg.example:5000", &files).unwrap_err();
        assert!(error.contains("auth.json") && !error.contains("SECRET-CANARY"), "{error}");
    }
}
