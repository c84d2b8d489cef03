//! The Secrets a build leaves to apply ([`ApplySecret`]): a generated
//! password made once and never replaced, or a value read from the
//! applying process's environment or a file and applied each run.
//!
//! Architecture Invariant: a value exists only in memory, in the request
//! that carries it: never in a step's body, the journal, the state, an
//! event or a message (an error naming it is rewritten before it leaves).
//! The Secrets carry `sovereign.dev/secret-of` and not the fabric's
//! inventory label, so refresh does not take them for strays.

use serde_json::{Value, json};
use sovereign_desired::{ApplySecret, SecretValue};
use sovereign_kubernetes::{Cluster, DriverError};

/// The Secret's identity, with no data: what a step shows and journals.
#[must_use]
pub fn identity(secret: &ApplySecret, fabric: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": &*secret.name, "namespace": &*secret.namespace,
                        "labels": {"app.kubernetes.io/managed-by": "sovereign", "sovereign.dev/secret-of": fabric}},
           "type": "Opaque"})
}

/// Why the value of `secret` cannot be had (an unset variable, a file
/// that cannot be read), naming the secret and its source, never a value;
/// `None` when it can (or is generated).
#[must_use]
pub fn missing_source(secret: &ApplySecret) -> Option<String> {
    let whose = format!("Secret {}/{}", secret.namespace, secret.name);
    match &secret.value {
        SecretValue::Random => None,
        SecretValue::Env(variable) => std::env::var_os(variable)
            .is_none()
            .then(|| format!("the environment has no {variable} (the source of {whose})")),
        SecretValue::File(path) => {
            std::fs::metadata(path).err().map(|e| format!("cannot read {path} (the source of {whose}): {}", e.kind()))
        }
    }
}

/// Makes the Secret ([`identity`] plus its value) on `cluster`; `Err`
/// says why, without the value.
pub async fn make(cluster: &Cluster, secret: &ApplySecret, identity: &Value) -> Result<(), String> {
    let mut object = identity.clone();
    let value = match &secret.value {
        SecretValue::Random => {
            // Made once: a rerun must not change a database's password under it.
            let live = cluster.get(&object).await.map_err(|e| e.to_string())?;
            if live.is_some_and(|live| live.object.pointer("/data").and_then(|data| data.get(&*secret.key)).is_some()) {
                return Ok(());
            }
            crate::clock::secure_random_hex(32)?
        }
        SecretValue::Env(variable) => std::env::var(variable).map_err(|_| {
            format!("the environment has no {variable} (the source of Secret {}/{})", secret.namespace, secret.name)
        })?,
        SecretValue::File(path) => {
            std::fs::read_to_string(path).map(|text| text.trim_end_matches(['\n', '\r']).to_owned()).map_err(|e| {
                format!("cannot read {path} (the source of Secret {}/{}): {}", secret.namespace, secret.name, e.kind())
            })?
        }
    };
    let encoded = sovereign_desired::base64(value.as_bytes());
    object["data"] = json!({ &*secret.key: encoded });
    let written = match secret.value {
        SecretValue::Random => match cluster.create(&object).await {
            // It exists (another run made it, or it has other keys): that
            // one stands if it holds the key, and is not ours to replace if not.
            Err(DriverError::Rejected { code: 409, .. }) => {
                let live = cluster.get(&object).await.map_err(|e| e.to_string())?;
                if live
                    .is_some_and(|live| live.object.pointer("/data").and_then(|data| data.get(&*secret.key)).is_some())
                {
                    Ok(())
                } else {
                    return Err(format!(
                        "Secret {}/{} exists without the key `{}`, and sovereign does not overwrite a Secret it did not make: add the key, or delete the Secret",
                        secret.namespace, secret.name, secret.key
                    ));
                }
            }
            other => other.map(drop),
        },
        _ => cluster.apply(&object, false).await.map(drop),
    };
    written.map_err(|e| e.to_string().replace(&encoded, "(sensitive)").replace(&value, "(sensitive)"))
}

/// The value of `key` in Secret `namespace/name`, decoded; `None` when
/// the Secret or the key is missing. `Err` says why, without a value.
pub async fn read_key(cluster: &Cluster, namespace: &str, name: &str, key: &str) -> Result<Option<String>, String> {
    let probe = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}});
    let Some(live) = cluster.get(&probe).await.map_err(|e| e.to_string())? else { return Ok(None) };
    let Some(encoded) = live.object.pointer("/data").and_then(|data| data.get(key)).and_then(Value::as_str) else {
        return Ok(None);
    };
    let bytes = sovereign_desired::unbase64(encoded)
        .ok_or_else(|| format!("Secret {namespace}/{name}: the key `{key}` is not base64"))?;
    String::from_utf8(bytes).map(Some).map_err(|_| format!("Secret {namespace}/{name}: the key `{key}` is not text"))
}
