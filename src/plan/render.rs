//! The plan as people read it: grouped by site and target, each group in
//! apply order, field diffs under each update, then what the changes mean
//! (replicas that move, serving capacity, flows, MIG layouts). Plain text,
//! the same bytes for the same plan.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;
use sovereign_desired::Target;

use super::{Action, Change, Plan};

/// Longest value shown inline; longer ones are cut with `…`.
const MAX_VALUE: usize = 160;

#[must_use]
pub fn human(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Plan for fabric \"{}\": {}.", plan.fabric, summary(plan));
    let mut groups: BTreeMap<(&str, Target), Vec<&Change>> = BTreeMap::new();
    for change in plan.changes.iter().filter(|c| c.action != Action::NoOp) {
        groups.entry((&change.id.site, change.id.target)).or_default().push(change);
    }
    let mut site = None;
    for ((at, target), changes) in &groups {
        if site != Some(*at) {
            let _ = writeln!(out, "\nsite {at}");
            site = Some(*at);
        }
        let _ = writeln!(out, "  {}", target.word());
        for change in changes {
            line(&mut out, change);
        }
    }
    impact(&mut out, plan);
    out
}

/// `3 to create, 1 to update, 40 unchanged`.
#[must_use]
pub fn summary(plan: &Plan) -> String {
    let counts = plan.counts();
    let n = |action| counts.get(&action).copied().unwrap_or(0);
    let mut parts = vec![
        format!("{} to create", n(Action::Create)),
        format!("{} to update", n(Action::Update)),
        format!("{} to replace", n(Action::Replace)),
        format!("{} to delete", n(Action::Delete)),
    ];
    if n(Action::Keep) > 0 {
        parts.push(format!("{} kept because it holds data", n(Action::Keep)));
    }
    parts.push(format!("{} unchanged", n(Action::NoOp)));
    parts.join(", ")
}

fn line(out: &mut String, change: &Change) {
    let sign = match change.action {
        Action::Create => "+",
        Action::Update => "~",
        Action::Replace => "-/+",
        Action::Delete => "-",
        Action::Keep => "=",
        Action::NoOp => " ",
    };
    let id = &change.id;
    let scope = id.namespace.as_deref().map(|n| format!("{n}/")).unwrap_or_default();
    // Names from a state file are escaped like any text from outside.
    let _ = write!(out, "    {sign} {} {}{}", shown_text(&id.kind), shown_text(&scope), shown_text(&id.name));
    if let Some(declaration) = &change.declaration {
        let _ = write!(out, "  ({})", shown_text(declaration));
    }
    out.push('\n');
    if change.patch {
        let what = match change.action {
            Action::Delete => "its fields that sovereign set are removed; the object stays",
            _ => "a patch of an object sovereign does not own: it must exist, and only these fields are set",
        };
        let _ = writeln!(out, "        {what}");
    }
    if !change.replace_because.is_empty() {
        let _ = writeln!(out, "        replaced: {} cannot change in place", change.replace_because.join(", "));
    }
    match (change.action, change.data_loss) {
        (Action::Replace | Action::Delete, Some(loss)) => {
            let _ = writeln!(out, "        ! {loss} are lost");
        }
        (Action::Keep, Some(loss)) => {
            let _ = writeln!(out, "        no longer declared, kept for {loss}: plan with --prune-data to delete it");
        }
        _ => {}
    }
    for field in &change.fields {
        field_line(out, &field.path, field.before.as_ref(), field.after.as_ref());
    }
}

fn field_line(out: &mut String, path: &str, before: Option<&Value>, after: Option<&Value>) {
    if let (Some(Value::String(a)), Some(Value::String(b))) = (before, after)
        && (a.contains('\n') || b.contains('\n'))
    {
        let _ = writeln!(out, "        {path}:");
        let diff = similar::TextDiff::from_lines(a.as_str(), b.as_str());
        for group in diff.grouped_ops(1) {
            for op in group {
                for change in diff.iter_changes(&op) {
                    let sign = match change.tag() {
                        similar::ChangeTag::Delete => "-",
                        similar::ChangeTag::Insert => "+",
                        similar::ChangeTag::Equal => " ",
                    };
                    let _ = writeln!(out, "          {sign} {}", shown_text(change.value().trim_end_matches('\n')));
                }
            }
        }
        return;
    }
    let side = |v: Option<&Value>| v.map_or_else(|| "(absent)".to_owned(), shown);
    let _ = writeln!(out, "        {path}: {} → {}", side(before), side(after));
}

/// A value as compact JSON, cut to [`MAX_VALUE`] characters, with control
/// characters escaped (text from a spec never moves the terminal).
fn shown(value: &Value) -> String {
    shown_text(&serde_json::to_string(value).unwrap_or_default())
}

fn shown_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_VALUE + 8));
    for c in text.chars().take(MAX_VALUE) {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    if text.chars().count() > MAX_VALUE {
        out.push('…');
    }
    out
}

fn impact(out: &mut String, plan: &Plan) {
    let impact = &plan.impact;
    if impact.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nWhat it changes");
    for serve in &impact.serves {
        let nodes: std::collections::BTreeSet<&str> =
            serve.before.iter().chain(&serve.after).map(|g| g.node.as_str()).collect();
        let _ = writeln!(out, "  {} on {}:", serve.serve, serve.site);
        for node in nodes {
            let find = |groups: &[super::impact::Group]| groups.iter().find(|g| g.node == node).cloned();
            let (a, b) = (find(&serve.before), find(&serve.after));
            let text = match (&a, &b) {
                (Some(a), Some(b)) if a == b && serve.rolled.iter().any(|n| n == node) => {
                    format!("{} replicas ({}), rolled onto a new pod template", b.replicas, b.slice)
                }
                (Some(a), Some(b)) if a == b => continue,
                (Some(a), Some(b)) if a.slice == b.slice => {
                    format!("{} → {} replicas ({})", a.replicas, b.replicas, b.slice)
                }
                (Some(a), Some(b)) => format!("{} ({}) → {} ({})", a.replicas, a.slice, b.replicas, b.slice),
                (None, Some(b)) => format!("new: {} replicas ({})", b.replicas, b.slice),
                (Some(a), None) => format!("removed: its {} replicas ({}) stop", a.replicas, a.slice),
                (None, None) => continue,
            };
            let _ = writeln!(out, "    {node}: {text}");
        }
        let c = serve.capacity;
        let _ = writeln!(
            out,
            "    replicas {} → {}; at least {} serve during the rollout",
            c.before, c.after, c.during_at_least
        );
    }
    for flow in &impact.flows {
        let _ = writeln!(out, "  flow {} on {} ({}): {}", flow.change, flow.site, flow.policy, shown_text(&flow.why));
    }
    for mig in &impact.mig {
        let side = |s: &Option<String>| s.clone().unwrap_or_else(|| "no layout".to_owned());
        let _ = writeln!(
            out,
            "  MIG layout of node {} on {}: {} → {}: the GPU Operator's MIG manager drains these GPUs, and every pod on them restarts",
            mig.node,
            mig.site,
            side(&mig.before),
            side(&mig.after)
        );
    }
    for gate in &impact.gates {
        let _ = writeln!(
            out,
            "  gate on serve {:?}: eval {:?} (on-fail {:?}): apply reads its latest completed run before the update{}",
            gate.serve,
            gate.eval,
            gate.on_fail,
            if gate.on_fail == "warn" { " and warns on a miss" } else { ", and a miss blocks it" }
        );
    }
}
