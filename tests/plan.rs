//! `sovereign plan` end to end on the lab example: from nothing, against
//! the state of what was applied, after edits, saved and stale plans,
//! broken states, and a secret canary.
//!
//! Until apply lands, the state "after an apply" is written here from a
//! saved plan's bodies with the library's state API: what apply records.

#[path = "support/lab.rs"]
mod lab;

use std::path::Path;
use std::process::{Command, Output};

use lab::{edit, lab_with_canary_secret};
use serde_json::Value;
use sovereign::state::{LocalState, StateDocument};

const CANARY: &str = "canary-5d1e0c7a9b";

fn sovereign(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sovereign"))
        .args(args)
        .env("SOVEREIGN_TEST_CANARY", CANARY)
        .output()
        .expect("the binary runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn plan_json(spec: &Path) -> Value {
    let output = sovereign(&["plan", spec.to_str().unwrap(), "--json"]);
    assert!(output.status.success(), "{}", text(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// What apply records after applying a saved plan: every body it sends.
fn record_applied(plan_file: &Path, state_path: &Path, serial: u64) {
    let plan = sovereign::plan::saved::read(plan_file).unwrap();
    let local = LocalState::new(state_path.to_owned());
    let mut state = local.load().unwrap().unwrap_or_else(|| StateDocument::new("lab"));
    state.serial = serial;
    for id in &plan.deletes {
        state.resources.remove(id);
    }
    for planned in &plan.desired {
        state.record(planned, None, 1_796_170_000);
    }
    local.save(&state).unwrap();
}

fn actions(plan: &Value) -> Vec<(String, String)> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["action"].as_str().unwrap().to_owned(), c["id"].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn plan_from_nothing_then_no_changes_then_exactly_the_edits() {
    let (tmp, spec) = lab_with_canary_secret();
    let spec_arg = spec.to_str().unwrap();
    let state_path = spec.join(".sovereign/state.json");

    // From nothing: everything is created, and the detailed exit code says so.
    let output = sovereign(&["plan", spec_arg, "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let first = plan_json(&spec);
    assert_eq!(first["format_version"], 1);
    assert!(actions(&first).iter().all(|(a, _)| a == "create"));
    let created = actions(&first).len();
    assert!(created > 30, "{created}");
    assert!(!state_path.exists(), "plan never writes state");

    // Applied (recorded as apply will): no changes.
    let saved = tmp.path().join("first.plan");
    assert!(sovereign(&["plan", spec_arg, "-o", saved.to_str().unwrap()]).status.success());
    record_applied(&saved, &state_path, 1);
    let output = sovereign(&["plan", spec_arg, "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains(&format!("0 to create, 0 to update, 0 to replace, 0 to delete, {created} unchanged")),
        "{}",
        text(&output)
    );

    // Edits: a shorter context for chat, and the utility serve removed.
    edit(&spec, "max-model-len 8192", "max-model-len 4096");
    let start = std::fs::read_to_string(spec.join("fabric.kdl")).unwrap().find("serve \"utility\"").unwrap();
    let path = spec.join("fabric.kdl");
    let mut body = std::fs::read_to_string(&path).unwrap();
    let end = start + body[start..].find("\n}\n").unwrap() + 3;
    body.replace_range(start..end, "");
    std::fs::write(&path, body).unwrap();
    let plan = plan_json(&spec);
    let acted = actions(&plan);
    let find = |id: &str| acted.iter().find(|(_, i)| i == id).map(|(a, _)| a.as_str());
    assert_eq!(find("k3s/bench/apps/Deployment/lab-kinetic/chat-gpu-01"), Some("update"), "{acted:?}");
    assert_eq!(find("k3s/bench/apps/Deployment/lab-kinetic/utility-gpu-01"), Some("delete"), "{acted:?}");
    assert_eq!(find("k3s/bench/Service/lab-kinetic/utility"), Some("delete"), "{acted:?}");
    assert_eq!(find("k3s/bench/ConfigMap/gpu-operator/sovereign-mig-parted-config"), Some("update"), "{acted:?}");
    // Nothing else: every change is of chat, utility, the MIG layout or a flow policy.
    for (action, id) in &acted {
        assert!(
            id.contains("chat") || id.contains("utility") || id.contains("mig-parted") || id.contains("NetworkPolicy"),
            "{action} {id}"
        );
    }
    let chat = &plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"].as_str().unwrap().ends_with("chat-gpu-01"))
        .unwrap();
    let paths: Vec<&str> = chat["fields"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths.len(), 1, "{chat}");
    assert!(paths[0].starts_with("spec.template.spec.containers[vllm].args["), "{chat}");
    assert_eq!(chat["fields"][0]["after"], "4096");
    // Deletes come after every update.
    let last_update = acted.iter().rposition(|(a, _)| a == "update").unwrap();
    let first_delete = acted.iter().position(|(a, _)| a == "delete").unwrap();
    assert!(last_update < first_delete, "{acted:?}");
    let impact = &plan["impact"];
    assert_eq!(impact["mig"][0]["node"], "gpu-01", "{impact}");
    let utility = impact["serves"].as_array().unwrap().iter().find(|s| s["serve"] == "serve \"utility\"").unwrap();
    assert_eq!(utility["after"].as_array().unwrap().len(), 0);
    assert_eq!(utility["capacity"]["before"], 1);
    let human = text(&sovereign(&["plan", spec_arg]));
    assert!(human.contains("MIG layout of node gpu-01 on bench"), "{human}");
    assert!(human.contains("utility-gpu-01"), "{human}");
}

#[test]
fn a_saved_plan_is_refused_once_stale_saying_what_changed() {
    let (tmp, spec) = lab_with_canary_secret();
    let spec_arg = spec.to_str().unwrap();
    let state_path = spec.join(".sovereign/state.json");
    let first = tmp.path().join("first.plan");
    assert!(sovereign(&["plan", spec_arg, "-o", first.to_str().unwrap()]).status.success());
    record_applied(&first, &state_path, 1);

    edit(&spec, "replicas 1 ", "replicas 1 // still one\n   ");
    let second = tmp.path().join("second.plan");
    assert!(sovereign(&["plan", spec_arg, "-o", second.to_str().unwrap()]).status.success());
    // A current plan: checked, then apply says it cannot apply yet.
    let output = sovereign(&["apply", second.to_str().unwrap()]);
    assert!(text(&output).contains("is current") || text(&output).contains("no changes"), "{}", text(&output));

    // Another apply moved the state on.
    record_applied(&first, &state_path, 2);
    let output = sovereign(&["apply", second.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("serial 1 when it was made, 2 now"), "{}", text(&output));

    // And the spec was edited since.
    edit(&spec, "max-model-len 8192", "max-model-len 4096");
    let said = text(&sovereign(&["apply", second.to_str().unwrap()]));
    assert!(said.contains("is stale") && said.contains("fabric.kdl changed"), "{said}");

    // `plan --json` output has no bodies: not a plan to apply.
    let json = tmp.path().join("plan.json");
    std::fs::write(&json, sovereign(&["plan", spec_arg, "--json"]).stdout).unwrap();
    assert!(text(&sovereign(&["apply", json.to_str().unwrap()])).contains("plan -o FILE"));
}

#[test]
fn apply_refuses_targets_without_a_driver_and_destroy_of_nothing_changes_nothing() {
    // Device bundles of a site without a registry cannot be pushed (the
    // air-gapped example's edge fleet, its registry taken out).
    let (tmp, spec) = lab_with_canary_secret();
    let airgapped = tmp.path().join("airgapped");
    std::fs::create_dir(&airgapped).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/airgapped/fabric.kdl");
    let example = std::fs::read_to_string(example).unwrap();
    let example = example.replace("registry \"oci://harbor.plant.hochwald.internal/bundles\"", "");
    std::fs::write(airgapped.join("fabric.kdl"), example).unwrap();
    let state = tmp.path().join("airgapped.json");
    let args =
        ["apply", airgapped.to_str().unwrap(), "--auto-approve", "--partial", "--state", state.to_str().unwrap()];
    let output = sovereign(&args);
    assert_eq!(output.status.code(), Some(1));
    let said = text(&output);
    assert!(
        said.contains("not yet supported")
            && said.contains("device bundles of a site with no `registry`")
            && said.contains("--target k3s"),
        "{said}"
    );
    assert!(!state.exists(), "a refused apply writes no state");
    let output = sovereign(&["destroy", spec.to_str().unwrap(), "--auto-approve"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("nothing to destroy"), "{}", text(&output));
    assert!(!spec.join(".sovereign/state.json").exists());
}

#[test]
fn a_broken_state_is_an_error_that_keeps_the_last_good_copy() {
    let (tmp, spec) = lab_with_canary_secret();
    let spec_arg = spec.to_str().unwrap();
    let state_path = spec.join(".sovereign/state.json");
    let saved = tmp.path().join("p");
    assert!(sovereign(&["plan", spec_arg, "-o", saved.to_str().unwrap()]).status.success());
    record_applied(&saved, &state_path, 1);
    record_applied(&saved, &state_path, 2);
    let good = std::fs::read(spec.join(".sovereign/state.json.backup")).unwrap();
    let current = std::fs::read(&state_path).unwrap();
    std::fs::write(&state_path, &current[..current.len() / 2]).unwrap();
    let output = sovereign(&["plan", spec_arg]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("cannot be read") && text(&output).contains("state.json.backup"),
        "{}",
        text(&output)
    );
    assert_eq!(std::fs::read(spec.join(".sovereign/state.json.backup")).unwrap(), good);
    // Another fabric's state is refused too.
    let other = tmp.path().join("other.json");
    let mut state = StateDocument::new("elsewhere");
    state.serial = 1;
    LocalState::new(other.clone()).save(&state).unwrap();
    let said = text(&sovereign(&["plan", spec_arg, "--state", other.to_str().unwrap()]));
    assert!(said.contains("fabric \"elsewhere\"'s"), "{said}");
}

#[test]
fn no_secret_reaches_a_plan_its_json_or_the_state() {
    let (tmp, spec) = lab_with_canary_secret();
    let spec_arg = spec.to_str().unwrap();
    let saved = tmp.path().join("p");
    let outputs = [
        sovereign(&["plan", spec_arg]),
        sovereign(&["plan", spec_arg, "--json"]),
        sovereign(&["plan", spec_arg, "-o", saved.to_str().unwrap()]),
    ];
    for output in &outputs {
        assert!(output.status.success(), "{}", text(output));
        assert!(!text(output).contains(CANARY));
    }
    record_applied(&saved, &spec.join(".sovereign/state.json"), 1);
    for file in [saved, spec.join(".sovereign/state.json")] {
        assert!(!String::from_utf8_lossy(&std::fs::read(&file).unwrap()).contains(CANARY), "{}", file.display());
    }
}
