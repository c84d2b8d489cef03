//! What a site's API server refused, as diagnostics at the spec
//! declarations the objects were built from (`SOV6001`, `SOV6002`): the
//! same codes, spans and help as `check`'s, so an editor or CI reads them
//! alike. A saved plan (`apply FILE`) has no sources: its diagnostics name
//! the declaration in words instead of pointing at it.

use std::collections::HashMap;
use std::fmt::Write as _;

use sovereign::apply::{Failure, FailureKind, Outcome, Step};
use sovereign_diagnostics::{Diagnostic, Format, Label, RenderConfig, Severity, SourceMap, Span, codes, render};
use sovereign_ir::Fabric;

/// The spec's sources and where each declaration is, by the words
/// resources carry (`serve "chat"`).
pub(crate) struct Origins {
    sources: SourceMap,
    spans: HashMap<String, Span>,
    config: RenderConfig,
}

impl Origins {
    pub(crate) fn new(fabric: &Fabric, sources: SourceMap, config: RenderConfig) -> Origins {
        let spans = fabric
            .declarations(None)
            .into_iter()
            .filter_map(|(kind, name)| {
                let item = fabric.item(fabric.lookup(kind, name)?);
                let span = item.name.as_ref().map_or(item.keyword_span, |name| name.span);
                let keyword = kind.rsplit('/').next().unwrap_or(kind);
                Some((format!("{keyword} \"{name}\""), span))
            })
            .collect();
        Origins { sources, spans, config }
    }
}

/// The code of a failure the spec's author must act on; `None` for one a
/// rerun may mend (an unreachable cluster, a slow rollout).
#[must_use]
pub(crate) fn code(failure: &Failure) -> Option<sovereign_diagnostics::Code> {
    match failure.kind {
        FailureKind::Refused => Some(codes::OBJECT_REFUSED),
        FailureKind::Conflict => Some(codes::FIELD_CONFLICT),
        FailureKind::Unreachable | FailureKind::NotReady | FailureKind::Gated | FailureKind::Other => None,
    }
}

/// The diagnostics of the refused steps, rendered for a terminal or a log;
/// empty when nothing was refused.
pub(crate) fn render_refusals(steps: &[Step], outcomes: &[Outcome], origins: Option<&Origins>) -> String {
    let mut placed = Vec::new();
    let mut unplaced = String::new();
    for (step, outcome) in steps.iter().zip(outcomes) {
        let Outcome::Failed(failure) = outcome else { continue };
        let Some(code) = code(failure) else { continue };
        let id = &step.planned.id;
        let who = match id.target {
            sovereign_desired::Target::Temporal => format!("the Temporal server of site \"{}\"", id.site),
            sovereign_desired::Target::Qdrant => format!("the Qdrant of site \"{}\"", id.site),
            sovereign_desired::Target::Npu => format!("the registry of site \"{}\"", id.site),
            _ => format!("the API server of site \"{}\"", id.site),
        };
        let message = format!("{who} refused {id}: {}", failure.why);
        let help = match failure.kind {
            FailureKind::Conflict => {
                "apply with `--force-conflicts` to take these fields over, or stop setting them in the spec; `sovereign explain SOV6002`"
            }
            _ => {
                "what depends on it was skipped; fix what the target names and apply again; `sovereign explain SOV6001`"
            }
        };
        let declaration = step.planned.declaration.as_deref();
        let span = origins.zip(declaration).and_then(|(origins, declaration)| origins.spans.get(declaration));
        match span {
            Some(&span) => {
                let shown = if failure.fields.is_empty() {
                    format!("{id} comes from here")
                } else {
                    format!("{id} comes from here; the API server named {}", failure.fields.join(", "))
                };
                placed.push(Diagnostic {
                    code,
                    severity: Severity::Error,
                    message,
                    primary: Label { span, message: shown },
                    labels: Vec::new(),
                    help: Some(help.to_owned()),
                    fixes: Vec::new(),
                    redact: false,
                });
            }
            None => {
                let from = declaration.map(|d| format!("\n  = from: {d}")).unwrap_or_default();
                let _ = writeln!(unplaced, "error[{}]: {message}{from}\n  = help: {help}\n", code.id);
            }
        }
    }
    let mut text = String::new();
    if let Some(origins) = origins.filter(|_| !placed.is_empty()) {
        placed.sort_by_key(|d| d.primary.span);
        text.push_str(&render(&placed, &origins.sources, Format::Human, origins.config));
    }
    text.push_str(&unplaced);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use sovereign::apply::Op;
    use sovereign::plan::saved::{Planned, sha256};
    use sovereign_desired::{ResourceId, Target};

    fn step(declaration: Option<&str>) -> Step {
        let text = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"chat","namespace":"lab"}}"#;
        Step {
            op: Op::Apply,
            planned: Planned {
                id: ResourceId {
                    target: Target::K3s,
                    site: "bench".into(),
                    kind: "ConfigMap".into(),
                    namespace: Some("lab".into()),
                    name: "chat".into(),
                },
                declaration: declaration.map(str::to_owned),
                patch: false,
                depends_on: Vec::new(),
                content_sha256: sha256(text),
                body: serde_json::value::RawValue::from_string(text.to_owned()).unwrap(),
            },
            object: serde_json::from_str(text).unwrap(),
            after: Vec::new(),
            makes: None,
            blocked: None,
        }
    }

    fn refused(kind: FailureKind) -> Outcome {
        Outcome::Failed(Failure { kind, why: "it is wrong".into(), fields: vec!["data.x".into()] })
    }

    #[test]
    fn a_refusal_without_sources_names_its_code_and_declaration() {
        let steps = [step(Some("serve \"chat\"")), step(None), step(None)];
        let outcomes = [
            refused(FailureKind::Refused),
            refused(FailureKind::Conflict),
            Outcome::Failed(Failure::other("the journal: full")),
        ];
        let text = render_refusals(&steps, &outcomes, None);
        assert!(text.contains("error[SOV6001]") && text.contains("from: serve \"chat\""), "{text}");
        assert!(text.contains("error[SOV6002]") && text.contains("--force-conflicts"), "{text}");
        assert!(!text.contains("journal"), "only refusals are diagnostics: {text}");
    }

    #[test]
    fn nothing_refused_renders_nothing() {
        let steps = [step(None)];
        assert_eq!(render_refusals(&steps, &[refused(FailureKind::NotReady)], None), "");
    }
}
