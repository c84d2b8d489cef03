//! Renderers: one diagnostic model, four views.
//!
//! - human: miette's graphical report (colour decided by the caller);
//! - `json`: our own versioned format (`docs/json-output.md`);
//! - `sarif`: SARIF 2.1.0 for code-scanning dashboards;
//! - `github`: workflow commands that annotate pull requests.
//!
//! Renderers are the only place where byte offsets become lines and columns.

use std::fmt::{self, Write as _};

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceCode};
use serde::Serialize;
use serde_json::{Value, json};

use crate::codes::ALL;
use crate::excerpt::{Excerpt, printable};
use crate::{Diagnostic, Severity, SourceMap, Span};

/// The version of the JSON output format; bumped on any incompatible change.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// Output format of `check` and friends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Sarif,
    Github,
}

/// Settings of the human renderer.
#[derive(Clone, Copy, Debug)]
pub struct RenderConfig {
    pub color: bool,
    /// Terminal width used to wrap text.
    pub width: usize,
}

/// Renders all diagnostics in `format`.
#[must_use]
pub fn render(diagnostics: &[Diagnostic], sources: &SourceMap, format: Format, config: RenderConfig) -> String {
    match format {
        Format::Human => {
            // A secret shown by one diagnostic could appear as context in
            // another: mask every redacted span in every snippet.
            let redactions: Vec<Span> = diagnostics.iter().filter(|d| d.redact).map(|d| d.primary.span).collect();
            let mut out = String::new();
            for diagnostic in diagnostics {
                out.push_str(&render_human(diagnostic, sources, config, &redactions));
            }
            out
        }
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&json_document(diagnostics, sources)).unwrap_or_default();
            text.push('\n');
            text
        }
        Format::Sarif => {
            let mut text = sarif_document(diagnostics, sources);
            text.push('\n');
            text
        }
        Format::Github => diagnostics.iter().map(|d| github_line(d, sources)).collect(),
    }
}

// ---------------------------------------------------------------- human

/// A diagnostic (or the part of one that lives in one file) as miette sees it.
struct MietteView {
    code: Option<String>,
    severity: Severity,
    message: String,
    help: Option<String>,
    source: Excerpt,
    labels: Vec<LabeledSpan>,
    related: Vec<MietteView>,
}

impl fmt::Debug for MietteView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
impl fmt::Display for MietteView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for MietteView {}

impl miette::Diagnostic for MietteView {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.code.as_ref().map(|c| Box::new(c) as Box<dyn fmt::Display>)
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic)))
        }
    }
}

fn miette_label(excerpt: &Excerpt, span: Span, message: &str, primary: bool) -> LabeledSpan {
    let label = if message.is_empty() { None } else { Some(printable(message).into_owned()) };
    let source_span = excerpt.span(span);
    if primary {
        LabeledSpan::new_primary_with_span(label, source_span)
    } else {
        LabeledSpan::new_with_span(label, source_span)
    }
}

/// Renders one diagnostic as miette's graphical report.
#[must_use]
pub fn render_one_human(diagnostic: &Diagnostic, sources: &SourceMap, config: RenderConfig) -> String {
    let redactions: Vec<Span> = diagnostic.redact.then_some(diagnostic.primary.span).into_iter().collect();
    render_human(diagnostic, sources, config, &redactions)
}

fn render_human(diagnostic: &Diagnostic, sources: &SourceMap, config: RenderConfig, redactions: &[Span]) -> String {
    let file = diagnostic.primary.span.file;
    let mut here = vec![(diagnostic.primary.span, diagnostic.primary.message.as_str())];
    let mut related: Vec<MietteView> = Vec::new();
    for label in &diagnostic.labels {
        if label.span.file == file {
            here.push((label.span, &label.message));
        } else {
            // Labels in other files are shown as notes with their own snippet.
            let excerpt = Excerpt::new(sources, label.span.file, &[label.span], redactions);
            related.push(MietteView {
                code: None,
                severity: diagnostic.severity,
                message: format!("related: {}", printable(&label.message)),
                help: None,
                labels: vec![miette_label(&excerpt, label.span, &label.message, true)],
                source: excerpt,
                related: Vec::new(),
            });
        }
    }
    let spans: Vec<Span> = here.iter().map(|(span, _)| *span).collect();
    let excerpt = Excerpt::new(sources, file, &spans, redactions);
    let labels =
        here.iter().enumerate().map(|(i, (span, message))| miette_label(&excerpt, *span, message, i == 0)).collect();
    let view = MietteView {
        code: Some(format!("{}({})", diagnostic.code.id, diagnostic.code.name)),
        severity: diagnostic.severity,
        message: printable(&diagnostic.message).into_owned(),
        help: diagnostic.help.as_deref().map(|h| printable(h).into_owned()),
        source: excerpt,
        labels,
        related,
    };
    let theme = if config.color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    // Nested, related notes carry no "Warning:"/"Error:" header of their own,
    // which would not agree with the summary's counts.
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(config.width)
        .with_links(false)
        .with_show_related_as_nested(true);
    let mut out = String::new();
    if handler.render_report(&mut out, &view).is_err() {
        // miette failed (it should not): fall back to a plain line.
        let _ = writeln!(
            out,
            "{}[{}]: {}",
            diagnostic.severity.as_str(),
            diagnostic.code.id,
            printable(&diagnostic.message)
        );
    }
    out
}

// ---------------------------------------------------------------- json

// ValueKind and borrowed, serialized directly (see SARIF below). Fields are in
// alphabetical order: the order the format has always had.

#[derive(Serialize)]
struct JsonPosition {
    byte_end: u32,
    byte_start: u32,
    column: usize,
    end_column: usize,
    end_line: usize,
    file: String,
    line: usize,
}

#[derive(Serialize)]
struct JsonRelated<'a> {
    location: JsonPosition,
    message: &'a str,
}

#[derive(Serialize)]
struct JsonFix<'a> {
    location: JsonPosition,
    replacement: &'a str,
    title: &'a str,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    code: &'a str,
    fixes: Vec<JsonFix<'a>>,
    help: Option<&'a str>,
    label: &'a str,
    location: JsonPosition,
    message: &'a str,
    name: &'a str,
    related: Vec<JsonRelated<'a>>,
    severity: &'a str,
}

#[derive(Serialize)]
struct JsonSummary {
    errors: usize,
    warnings: usize,
}

#[derive(Serialize)]
struct JsonDocument<'a> {
    diagnostics: Vec<JsonDiagnostic<'a>>,
    summary: JsonSummary,
    tool: &'a str,
    version: u32,
}

fn position(sources: &SourceMap, span: Span) -> JsonPosition {
    let start = sources.line_col(span.file, span.start);
    let end = sources.line_col(span.file, span.end);
    JsonPosition {
        byte_end: sources.original_offset(span.file, span.end),
        byte_start: sources.original_offset(span.file, span.start),
        column: start.column,
        end_column: end.column,
        end_line: end.line,
        file: sources.display_path(span.file),
        line: start.line,
    }
}

fn json_document<'a>(diagnostics: &'a [Diagnostic], sources: &SourceMap) -> JsonDocument<'a> {
    let items = diagnostics
        .iter()
        .map(|d| JsonDiagnostic {
            code: d.code.id,
            fixes: d
                .fixes
                .iter()
                .map(|f| JsonFix { location: position(sources, f.span), replacement: &f.replacement, title: &f.title })
                .collect(),
            help: d.help.as_deref(),
            label: &d.primary.message,
            location: position(sources, d.primary.span),
            message: &d.message,
            name: d.code.name,
            related: d
                .labels
                .iter()
                .map(|l| JsonRelated { location: position(sources, l.span), message: &l.message })
                .collect(),
            severity: d.severity.as_str(),
        })
        .collect();
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    JsonDocument {
        diagnostics: items,
        summary: JsonSummary { errors, warnings: diagnostics.len() - errors },
        tool: "sovereign",
        version: JSON_FORMAT_VERSION,
    }
}

// ---------------------------------------------------------------- sarif

fn sarif_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

// ValueKind and borrowed, serialized directly: building a `serde_json::Value`
// tree per result was most of the cost of a large log.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRegion {
    start_line: usize,
    start_column: usize,
    end_line: usize,
    end_column: usize,
    byte_offset: u32,
    byte_length: u32,
}

#[derive(Serialize)]
struct SarifArtifact {
    uri: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifPhysical {
    artifact_location: SarifArtifact,
    region: SarifRegion,
}

#[derive(Serialize)]
struct SarifText<'a> {
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<usize>,
    physical_location: SarifPhysical,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<SarifText<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifDeleted {
    byte_offset: u32,
    byte_length: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifReplacement<'a> {
    deleted_region: SarifDeleted,
    inserted_content: SarifText<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifChange<'a> {
    artifact_location: SarifArtifact,
    replacements: [SarifReplacement<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifFix<'a> {
    description: SarifText<'a>,
    artifact_changes: [SarifChange<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    rule_index: usize,
    level: &'a str,
    message: SarifMessage,
    locations: [SarifLocation<'a>; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    related_locations: Vec<SarifLocation<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fixes: Vec<SarifFix<'a>>,
}

#[derive(Serialize)]
struct SarifMessage {
    text: String,
}

fn sarif_physical(sources: &SourceMap, span: Span) -> SarifPhysical {
    let start = sources.line_col(span.file, span.start);
    let end = sources.line_col(span.file, span.end);
    let (from, to) = (sources.original_offset(span.file, span.start), sources.original_offset(span.file, span.end));
    SarifPhysical {
        artifact_location: SarifArtifact { uri: uri_reference(&sources.display_path(span.file)) },
        region: SarifRegion {
            start_line: start.line,
            start_column: start.column,
            end_line: end.line,
            end_column: end.column,
            byte_offset: from,
            byte_length: to - from,
        },
    }
}

fn sarif_document(diagnostics: &[Diagnostic], sources: &SourceMap) -> String {
    let rules: Vec<Value> = ALL
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "shortDescription": { "text": c.summary },
                "fullDescription": { "text": c.summary },
                "help": { "text": format!("Run `sovereign explain {}` for the full explanation.", c.id), "markdown": c.doc },
                "defaultConfiguration": { "level": sarif_level(c.severity) },
            })
        })
        .collect();
    let results: Vec<SarifResult<'_>> = diagnostics
        .iter()
        .map(|d| {
            let rule_index = ALL.iter().position(|c| c.id == d.code.id).unwrap_or(0);
            let mut message = d.message.clone();
            if let Some(help) = &d.help {
                message.push_str(". Help: ");
                message.push_str(help);
            }
            SarifResult {
                rule_id: d.code.id,
                rule_index,
                level: sarif_level(d.severity),
                message: SarifMessage { text: message },
                locations: [SarifLocation {
                    id: None,
                    physical_location: sarif_physical(sources, d.primary.span),
                    message: None,
                }],
                related_locations: d
                    .labels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| SarifLocation {
                        id: Some(i),
                        physical_location: sarif_physical(sources, l.span),
                        message: Some(SarifText { text: if l.message.is_empty() { "related" } else { &l.message } }),
                    })
                    .collect(),
                fixes: d
                    .fixes
                    .iter()
                    .map(|f| {
                        let (from, to) = (
                            sources.original_offset(f.span.file, f.span.start),
                            sources.original_offset(f.span.file, f.span.end),
                        );
                        SarifFix {
                            description: SarifText { text: &f.title },
                            artifact_changes: [SarifChange {
                                artifact_location: SarifArtifact {
                                    uri: uri_reference(&sources.display_path(f.span.file)),
                                },
                                replacements: [SarifReplacement {
                                    deleted_region: SarifDeleted { byte_offset: from, byte_length: to - from },
                                    inserted_content: SarifText { text: &f.replacement },
                                }],
                            }],
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Run<'a> {
        tool: Value,
        column_kind: &'a str,
        results: Vec<SarifResult<'a>>,
    }
    #[derive(Serialize)]
    struct Log<'a> {
        #[serde(rename = "$schema")]
        schema: &'a str,
        version: &'a str,
        runs: [Run<'a>; 1],
    }
    let log = Log {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        version: "2.1.0",
        runs: [Run {
            tool: json!({ "driver": {
                "name": "sovereign",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/sovereign-fabric/sovereign",
                "rules": rules,
            }}),
            column_kind: "unicodeCodePoints",
            results,
        }],
    };
    serde_json::to_string_pretty(&log).unwrap_or_default()
}

/// A path as an RFC 3986 URI reference (SARIF's `uri` format): every byte
/// outside the unreserved set and `/` percent-encoded, so spaces and
/// non-ASCII letters do not make the log invalid.
fn uri_reference(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

// ---------------------------------------------------------------- github

fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

fn github_line(d: &Diagnostic, sources: &SourceMap) -> String {
    let start = sources.line_col(d.primary.span.file, d.primary.span.start);
    let end = sources.line_col(d.primary.span.file, d.primary.span.end);
    let mut message = printable(&d.message).into_owned();
    if let Some(help) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(&printable(help));
    }
    format!(
        "::{} file={},line={},col={},endLine={},endColumn={},title={}::{}\n",
        d.severity.as_str(),
        escape_property(&sources.display_path(d.primary.span.file)),
        start.line,
        start.column,
        end.line,
        end.column,
        escape_property(&format!("{} {}", d.code.id, d.code.name)),
        escape_data(&message),
    )
}
