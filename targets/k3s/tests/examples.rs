//! The K3s objects of every example, snapshot-checked (adding an example
//! adds a golden file), and held to the desired-state invariants: every
//! dependency is built, nothing is built twice, no cycle, same bytes twice.

use std::path::Path;

use sovereign_check::Stdlib;
use sovereign_desired::DesiredState;
use sovereign_desired::Target;

#[path = "../../../tests/support/example_host.rs"]
mod example_host;
#[path = "../../../tests/support/files.rs"]
mod files;

use example_host::{examples, host};

fn build(dir: &Path) -> DesiredState {
    build_by_sites(dir, false)
}

/// One pass over every site, or (`by_sites`) one pass per site, merged:
/// what `sovereign build` does in batches.
fn build_by_sites(dir: &Path, by_sites: bool) -> DesiredState {
    let (stdlib, _) = Stdlib::embedded();
    let host = host(dir);
    let bytes = sovereign_check::Host::read(&host, Path::new("fabric.kdl")).unwrap();
    let compiled = sovereign_analyze::compile(&stdlib, Path::new("fabric.kdl"), bytes, &host);
    assert!(!compiled.has_errors(), "{} must check clean", dir.display());
    let (spec, analysis) = (compiled.spec.as_ref().unwrap(), compiled.analysis.as_ref().unwrap());
    let emit = |only: DesiredState| {
        let mut state = sovereign_k3s::emit_for(spec, analysis, &compiled.catalog, only);
        sovereign_temporal::emit_into(spec, analysis, &mut state);
        state
    };
    if !by_sites {
        return emit(DesiredState::default());
    }
    let mut all = DesiredState::default();
    for site in &analysis.sites.sites {
        let mut state = emit(DesiredState::for_sites([site.name.clone()]));
        state.only = None;
        all.merge(state);
    }
    all
}

fn render(state: &DesiredState) -> String {
    let mut out = String::new();
    for why in &state.unbuilt {
        out.push_str(&format!("# not built: {why}\n"));
    }
    for resource in state.resources.values() {
        out.push_str(&format!("# {} (sha256 {})\n", resource.id, &resource.hash[..16]));
        if !resource.depends_on.is_empty() {
            let deps: Vec<String> = resource.depends_on.iter().map(ToString::to_string).collect();
            out.push_str(&format!("# after {}\n", deps.join(", ")));
        }
        if resource.patch {
            out.push_str("# a patch of an object the cluster has\n");
        }
        // The object as `sovereign build` writes it.
        sovereign_desired::yaml::append_document(&resource.json, &mut out).unwrap();
    }
    out
}

#[test]
fn every_example_builds_a_sound_desired_state() {
    for dir in examples() {
        let state = build(&dir);
        assert!(state.problems().is_empty(), "{}: {:?}", dir.display(), state.problems());
        assert!(!state.resources.is_empty(), "{}: nothing built", dir.display());
        assert_eq!(render(&state), render(&build(&dir)), "{}: not deterministic", dir.display());
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(name, render(&state));
    }
}

/// A build in batches of sites (each batch skips other sites' work early)
/// is exactly one pass: the same resources, bodies and dependencies, and
/// every note one pass makes.
#[test]
fn building_site_by_site_gives_exactly_one_pass() {
    for dir in examples() {
        let (whole, by_sites) = (build(&dir), build_by_sites(&dir, true));
        let ids = |state: &DesiredState| state.resources.keys().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(ids(&whole), ids(&by_sites), "{}", dir.display());
        assert_eq!(whole.resources, by_sites.resources, "{}", dir.display());
        for (list, all) in [
            (&whole.unbuilt, &by_sites.unbuilt),
            (&whole.at_apply, &by_sites.at_apply),
            (&whole.assumptions, &by_sites.assumptions),
        ] {
            let (one, many): (std::collections::BTreeSet<_>, std::collections::BTreeSet<_>) =
                (list.iter().collect(), all.iter().collect());
            assert_eq!(one, many, "{}", dir.display());
        }
    }
}

#[test]
fn every_object_carries_the_inventory_labels() {
    for dir in examples() {
        for resource in build(&dir).resources.values().filter(|r| !r.patch && r.id.target == Target::K3s) {
            let labels = &resource.body()["metadata"]["labels"];
            assert_eq!(labels[sovereign_k3s::MANAGED_BY_LABEL], "sovereign", "{}", resource.id);
            assert!(labels[sovereign_k3s::FABRIC_LABEL].is_string(), "{}", resource.id);
        }
    }
}

#[test]
fn every_namespace_enforces_the_restricted_profile_and_denies_by_default() {
    for dir in examples() {
        let state = build(&dir);
        let namespaces: Vec<_> = state.resources.values().filter(|r| &*r.id.kind == "Namespace").collect();
        assert!(!namespaces.is_empty());
        for namespace in namespaces {
            let body = namespace.body();
            let labels = &body["metadata"]["labels"];
            if namespace.id.name.ends_with("-ebpf") {
                // The eBPF agent's, and only it, says why it is not restricted.
                assert_eq!(labels["pod-security.kubernetes.io/enforce"], "privileged", "{}", namespace.id);
                assert!(body["metadata"]["annotations"]["sovereign.dev/why"].is_string(), "{}", namespace.id);
            } else {
                assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted", "{}", namespace.id);
            }
            let name = namespace.id.name.clone();
            let deny = state.resources.values().find(|r| {
                &*r.id.kind == "networking.k8s.io/NetworkPolicy"
                    && r.id.namespace.as_deref() == Some(&*name)
                    && r.body()["spec"]["podSelector"] == serde_json::json!({})
                    && r.body()["spec"]["policyTypes"] == serde_json::json!(["Ingress", "Egress"])
                    && r.body()["spec"].get("ingress").is_none()
                    && r.body()["spec"].get("egress").is_none()
            });
            assert!(deny.is_some(), "{name} has no default-deny policy");
        }
    }
}

/// Every object (not the patches: a Node label change is not a Node) of
/// every example passes `kubernetes-validate --strict` for the oldest and
/// newest Kubernetes minors supported. Skipped, saying so, where the
/// validator is not installed (`scripts/test` installs it).
#[test]
fn every_object_passes_kubernetes_validate_strict() {
    if std::process::Command::new("kubernetes-validate").arg("--version").output().is_err() {
        files::skip_without("kubernetes-validate (pip install kubernetes-validate)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("sovereign-k3s-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for example in examples() {
        // Custom resources are checked against their CRDs (below).
        let objects = build(&example).resources.into_values().filter(|r| !r.patch && r.id.target == Target::K3s);
        for (i, resource) in objects.filter(|r| !is_custom(&r.id.kind)).enumerate() {
            let name = format!("{}-{i}.json", example.file_name().unwrap().to_string_lossy());
            std::fs::write(dir.join(&name), serde_json::to_vec(&resource.body()).unwrap()).unwrap();
            files.push(dir.join(name));
        }
    }
    for version in ["1.33.0", "1.36.0"] {
        let output = std::process::Command::new("kubernetes-validate")
            .args(["--strict", "--quiet", "-k", version])
            .args(&files)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "Kubernetes {version}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The restricted Pod Security Standard, field by field, on every pod
/// template (kubernetes.io/docs/concepts/security/pod-security-standards).
#[test]
fn every_pod_is_restricted_by_construction() {
    let mut pods = 0;
    for dir in examples() {
        let state = build(&dir);
        for resource in state.resources.values() {
            let body = resource.body();
            let Some(pod) = body["spec"]["template"]["spec"].as_object() else { continue };
            // The eBPF agent, alone in the one namespace that enforces
            // `privileged` (and says why), is the exception.
            let namespace = resource.id.namespace.as_deref().unwrap_or_default();
            let namespace_labels = state
                .resources
                .values()
                .find(|r| &*r.id.kind == "Namespace" && &*r.id.name == namespace && r.id.site == resource.id.site)
                .map(|r| r.body()["metadata"].clone())
                .unwrap_or_default();
            if namespace_labels["labels"]["pod-security.kubernetes.io/enforce"] == "privileged" {
                assert!(
                    namespace.ends_with("-ebpf"),
                    "{}: a privileged namespace that is not the eBPF agent's",
                    resource.id
                );
                assert!(namespace_labels["annotations"]["sovereign.dev/why"].is_string(), "{namespace} says not why");
                assert_eq!(&*resource.id.kind, "apps/DaemonSet", "{}: only the agent runs privileged", resource.id);
                continue;
            }
            assert_eq!(
                namespace_labels["labels"]["pod-security.kubernetes.io/enforce"], "restricted",
                "{}",
                resource.id
            );
            pods += 1;
            let id = &resource.id;
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{id}");
            assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault", "{id}");
            for key in ["hostNetwork", "hostPID", "hostIPC"] {
                assert!(pod.get(key).is_none_or(|v| v == false), "{id}: {key}");
            }
            for volume in pod["volumes"].as_array().into_iter().flatten() {
                assert!(volume.get("hostPath").is_none(), "{id}: hostPath volume");
            }
            for container in pod["containers"].as_array().unwrap() {
                let sc = &container["securityContext"];
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{id}");
                assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]), "{id}");
                assert!(sc["capabilities"].get("add").is_none(), "{id}: capabilities added");
                assert!(sc.get("privileged").is_none_or(|v| v == false), "{id}: privileged");
                let ports = container["ports"].as_array().into_iter().flatten();
                assert!(ports.clone().all(|p| p.get("hostPort").is_none()), "{id}");
            }
        }
    }
    assert!(pods > 0, "no pod templates walked");
}

/// Every replica placement decided has exactly one pod template asking for its slice or GPUs.
#[test]
fn every_placed_replica_has_a_pod_asking_for_its_devices() {
    for dir in examples() {
        let (stdlib, _) = Stdlib::embedded();
        let host = host(&dir);
        let bytes = sovereign_check::Host::read(&host, Path::new("fabric.kdl")).unwrap();
        let compiled = sovereign_analyze::compile(&stdlib, Path::new("fabric.kdl"), bytes, &host);
        let analysis = compiled.analysis.as_ref().unwrap();
        let state = sovereign_k3s::emit(compiled.spec.as_ref().unwrap(), analysis, &compiled.catalog);
        for plan in &analysis.serves {
            if state.unbuilt.iter().any(|u| u.starts_with(&format!("serve \"{}\"", plan.name))) {
                continue;
            }
            for p in &plan.placements {
                let asked: u64 = state
                    .resources
                    .values()
                    .filter(|r| &*r.id.kind == "apps/Deployment")
                    // The node (or TPU pool) its pods are pinned to.
                    .filter(|r| r.body()["spec"]["template"]["metadata"]["labels"]["sovereign.dev/node"] == *p.node)
                    .filter(|r| {
                        r.body()["metadata"]["annotations"][sovereign_k3s::DECLARATION_ANNOTATION]
                            == format!("serve \"{}\"", plan.name)
                    })
                    .map(|r| r.body()["spec"]["replicas"].as_u64().unwrap())
                    .sum();
                let on_node = plan.placements.iter().filter(|q| q.node == p.node).count() as u64;
                assert_eq!(asked, on_node, "{}: serve {} on {}", dir.display(), plan.name, p.node);
            }
        }
    }
}

/// Groups whose kinds come from CRDs rather than Kubernetes itself.
fn is_custom(kind: &str) -> bool {
    kind.starts_with("helm.cattle.io/") || kind.starts_with("external-secrets.io/")
}

/// Every custom resource of every example validates against the upstream
/// CRD's OpenAPI schema (`tests/fixtures/upstream/crds/`, copied from `../shared/fixtures/`), fields an API server
/// would prune included: what a real API server would accept, short of one.
#[test]
fn every_custom_resource_validates_against_its_crd() {
    let crds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/upstream/crds");
    if !crds.is_dir() || !files::python_with_jsonschema() {
        files::skip_without("the CRDs, or python3 with jsonschema and yaml,");
        return;
    }
    let dir = std::env::temp_dir().join(format!("sovereign-k3s-crds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for example in examples() {
        let custom =
            build(&example).resources.into_values().filter(|r| r.id.target == Target::K3s && is_custom(&r.id.kind));
        for (i, resource) in custom.enumerate() {
            kinds.insert(resource.id.kind.to_string());
            let name = format!("{}-{i}.json", example.file_name().unwrap().to_string_lossy());
            std::fs::write(dir.join(&name), resource.json.as_bytes()).unwrap();
            files.push(dir.join(name));
        }
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["external-secrets.io/ExternalSecret", "helm.cattle.io/HelmChart"],
        "the examples should exercise every custom kind"
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validate_crds.py");
    let output = std::process::Command::new("python3").arg(script).arg(&crds).args(&files).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every allow rule stands for a flow the analysis proved, and every
/// proved connection inside a cluster has its rules: a NetworkPolicy other
/// than the namespace defaults says why (`sovereign.dev/why`), an egress
/// from a serve reaches only a vector store it `uses`, an ingress to a
/// serve comes only from an eval that targets it or the collector's
/// clients, and each serve → store use on one site is allowed both ways.
#[test]
fn every_network_policy_rule_is_a_proved_flow() {
    let mut rules_checked = 0;
    for dir in examples() {
        let (stdlib, _) = Stdlib::embedded();
        let host = host(&dir);
        let bytes = sovereign_check::Host::read(&host, Path::new("fabric.kdl")).unwrap();
        let compiled = sovereign_analyze::compile(&stdlib, Path::new("fabric.kdl"), bytes, &host);
        let (spec, analysis) = (compiled.spec.as_ref().unwrap(), compiled.analysis.as_ref().unwrap());
        let state = sovereign_k3s::emit(spec, analysis, &compiled.catalog);
        let policies: Vec<serde_json::Value> = state
            .resources
            .values()
            .filter(|r| &*r.id.kind == "networking.k8s.io/NetworkPolicy")
            .map(|r| r.body())
            .filter(|b| !["default-deny", "allow-dns"].contains(&b["metadata"]["name"].as_str().unwrap()))
            .collect();
        let label = |name: &str| name.replace('/', ".");
        let uses: std::collections::BTreeSet<(String, String)> = spec
            .serves
            .values()
            .flat_map(|s| {
                s.uses
                    .iter()
                    .map(move |u| (label(&s.name.qualified), spec.vectorstores[u.value].name.qualified.to_string()))
            })
            .collect();
        let targets: std::collections::BTreeSet<(String, String)> = spec
            .evals
            .values()
            .map(|e| (label(&e.name.qualified), label(&spec.serves[e.target.value].name.qualified)))
            .collect();
        let mut seen_uses = std::collections::BTreeSet::new();
        for policy in &policies {
            let name = policy["metadata"]["name"].as_str().unwrap();
            assert!(policy["metadata"]["annotations"]["sovereign.dev/why"].is_string(), "{name} says no why");
            let selected = &policy["spec"]["podSelector"]["matchLabels"];
            for rule in policy["spec"]["egress"].as_array().into_iter().flatten() {
                let Some(serve) = selected["sovereign.dev/serve"].as_str() else { continue };
                for peer in rule["to"].as_array().unwrap() {
                    let pods = &peer["podSelector"]["matchLabels"];
                    if pods["app.kubernetes.io/name"] == "qdrant" {
                        let store = pods["app.kubernetes.io/instance"].as_str().unwrap();
                        let used = uses.iter().any(|(s, v)| s == serve && sovereign_helm::label(v) == store);
                        assert!(used, "{name}: serve {serve} does not use {store}");
                        seen_uses.insert((serve.to_owned(), store.to_owned()));
                    }
                }
            }
            for rule in policy["spec"]["ingress"].as_array().into_iter().flatten() {
                let Some(serve) = selected["sovereign.dev/serve"].as_str() else { continue };
                for peer in rule["from"].as_array().unwrap() {
                    if let Some(eval) = peer["podSelector"]["matchLabels"]["sovereign.dev/eval"].as_str() {
                        assert!(
                            targets.contains(&(eval.to_owned(), serve.to_owned())),
                            "{name}: eval {eval} does not target {serve}"
                        );
                    }
                }
            }
        }
        // Every use on one site got its egress rule.
        for flow in &analysis.flows.flows {
            let (Some(sovereign_model::Decl::Serve(serve)), Some(sovereign_model::Decl::VectorStore(store))) =
                (spec.decl(flow.from), spec.decl(flow.to))
            else {
                continue;
            };
            if flow.from_place != flow.to_place {
                continue;
            }
            let key = (
                label(&spec.serves[serve].name.qualified),
                sovereign_helm::label(&spec.vectorstores[store].name.qualified),
            );
            assert!(seen_uses.contains(&key), "{}: the proved flow {key:?} has no rule", dir.display());
        }
        rules_checked += seen_uses.len();
    }
    assert!(rules_checked > 0, "no example has a serve that uses a vector store on its site");
}
