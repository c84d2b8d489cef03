//! The stand-in plays the failures it is told to (a workload whose image
//! cannot be pulled gets a pod in ImagePullBackOff and stays unavailable)
//! and collects garbage as the controller manager does.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use kube_double::{ApiDouble, Options, Trouble};
use serde_json::{Value, json};

fn request(double: &ApiDouble, method: &str, path: &str, content_type: &str, body: &Value) -> (u16, Value) {
    let mut stream = std::net::TcpStream::connect(double.address()).unwrap();
    let body = if body.is_null() { String::new() } else { body.to_string() };
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: d\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = answer.split_once("\r\n\r\n").map_or("null", |(_, body)| body);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn an_unpullable_image_shows_as_a_failing_pod() {
    let double = ApiDouble::start(Options {
        schemas: kube_double::kubernetes_validate_schemas("1.34.0"),
        namespaces: vec!["x".into()],
        trouble: Trouble { unpullable: vec!["broken".into()], ..Trouble::default() },
        ..Options::default()
    })
    .unwrap();
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "x"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}},
        "spec": {"containers": [{"name": "c", "image": "example/broken:1"}]}}}});
    let (status, body) = request(
        &double,
        "PATCH",
        "/apis/apps/v1/namespaces/x/deployments/d?fieldManager=t",
        "application/apply-patch+yaml",
        &deployment,
    );
    assert_eq!(status, 201, "{body}");
    std::thread::sleep(Duration::from_millis(200));
    let (status, pods) =
        request(&double, "GET", "/api/v1/namespaces/x/pods?labelSelector=app%3Dd", "application/json", &Value::Null);
    assert_eq!(status, 200, "{pods}");
    let reason = pods.pointer("/items/0/status/containerStatuses/0/state/waiting/reason");
    assert_eq!(reason, Some(&json!("ImagePullBackOff")), "{pods}");
    let (_, live) =
        request(&double, "GET", "/apis/apps/v1/namespaces/x/deployments/d", "application/json", &Value::Null);
    assert_eq!(live.pointer("/status/availableReplicas"), Some(&json!(0)), "{live}");
}

/// As the garbage collector: an object whose owners are all gone is
/// deleted, whether its owner went after it was written or never existed.
#[test]
fn objects_whose_owners_are_gone_are_collected() {
    let double = ApiDouble::start(Options { namespaces: vec!["x".into()], ..Options::default() }).unwrap();
    let apply = |name: &str, owner: Option<&str>| {
        let mut object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "x"}});
        if let Some(uid) = owner {
            object["metadata"]["ownerReferences"] =
                json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]);
        }
        let path = format!("/api/v1/namespaces/x/configmaps/{name}?fieldManager=t");
        let (status, body) = request(&double, "PATCH", &path, "application/apply-patch+yaml", &object);
        assert_eq!(status, 201, "{body}");
        body
    };
    let get =
        |name: &str| request(&double, "GET", &format!("/api/v1/namespaces/x/configmaps/{name}"), "", &Value::Null).0;
    let owner = apply("owner", None);
    let uid = owner.pointer("/metadata/uid").and_then(Value::as_str).unwrap().to_owned();
    apply("owned", Some(&uid));
    apply("dangling", Some("no-such-uid"));
    apply("unowned", None);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!((get("owned"), get("dangling"), get("unowned")), (200, 404, 200), "only the dangling one is collected");
    let (status, _) = request(&double, "DELETE", "/api/v1/namespaces/x/configmaps/owner", "", &Value::Null);
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!((get("owned"), get("unowned")), (404, 200), "the owned one goes with its owner");
}
