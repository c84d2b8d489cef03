//! The diagnostic model shared by every stage of `sovereign`.
//!
//! Stages report user mistakes as [`Diagnostic`] values (never as `Err`).
//! A diagnostic carries a stable [`Code`], a primary [`Span`], related
//! labels (possibly in other files) and help text. Spans are byte ranges;
//! line and column are computed only when a diagnostic is rendered
//! ([`SourceMap::line_col`]), so producing diagnostics stays cheap.

pub mod codes;
mod excerpt;
mod render;
mod source;

pub use codes::Code;
pub use excerpt::printable;
pub use render::{Format, JSON_FORMAT_VERSION, RenderConfig, render, render_one_human};
pub use source::{Decoded, FileId, LineCol, Origin, SourceFile, SourceMap, Span, line_starts};

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Something is wrong: `check` fails.
    Error,
    /// Probably a mistake; fails only with `--deny-warnings`.
    Warning,
}

impl Severity {
    /// The lowercase word used in every output format.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A span with a short message shown beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// A machine-applicable fix: replace the text at `span` with `replacement`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fix {
    pub title: String,
    pub span: Span,
    pub replacement: String,
}

/// One problem found in a spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    /// A short lowercase phrase without a trailing period.
    pub message: String,
    /// The primary span and what it shows.
    pub primary: Label,
    /// Related spans, in the order a reader should follow them.
    pub labels: Vec<Label>,
    /// What to do about it.
    pub help: Option<String>,
    /// Fixes an editor may offer ("did you mean").
    pub fixes: Vec<Fix>,
    /// The primary span covers a secret: renderers must not show its text.
    pub redact: bool,
}

impl Diagnostic {
    /// A diagnostic with the code's default severity.
    #[must_use]
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity,
            message: message.into(),
            primary: Label { span, message: String::new() },
            labels: Vec::new(),
            help: None,
            fixes: Vec::new(),
            redact: false,
        }
    }

    /// Sets the text shown under the primary span.
    #[must_use]
    pub fn with_primary_label(mut self, message: impl Into<String>) -> Self {
        self.primary.message = message.into();
        self
    }

    /// Adds a related span.
    #[must_use]
    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label { span, message: message.into() });
        self
    }

    /// Sets the help text.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a fix an editor can apply.
    #[must_use]
    pub fn with_fix(mut self, title: impl Into<String>, span: Span, replacement: impl Into<String>) -> Self {
        self.fixes.push(Fix { title: title.into(), span, replacement: replacement.into() });
        self
    }

    /// Marks the primary span as secret material.
    #[must_use]
    pub fn redacted(mut self) -> Self {
        self.redact = true;
        self
    }

    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics by file, position and code, so output does not depend
/// on the order in which passes ran.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (a.primary.span.file, a.primary.span.start, a.primary.span.end, a.code.id, &a.message).cmp(&(
            b.primary.span.file,
            b.primary.span.start,
            b.primary.span.end,
            b.code.id,
            &b.message,
        ))
    });
}

/// The closest candidate to `word` by edit distance, if it is close enough
/// to be a plausible typo (used for "did you mean").
#[must_use]
pub fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    let length = word.chars().count();
    for candidate in candidates {
        // The distance is at least the difference in length: most candidates
        // of a large spec are ruled out without the quadratic comparison.
        if candidate.chars().count().abs_diff(length) > limit {
            continue;
        }
        let distance = edit_distance(word, candidate);
        if distance <= limit && best.is_none_or(|(d, c)| (distance, candidate) < (d, c)) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_and_rejects_strangers() {
        assert_eq!(closest("replcas", ["replicas", "schedule"]), Some("replicas"));
        assert_eq!(closest("zzzz", ["replicas", "schedule"]), None);
        assert_eq!(closest("tier", ["tier", "tiers"]), Some("tier"));
    }
}
