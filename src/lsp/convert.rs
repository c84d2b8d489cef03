//! Between the compiler's byte offsets and spans and the protocol's
//! positions (UTF-16 by default, UTF-8 when the client offers it), and
//! from compiler diagnostics to protocol diagnostics.

use std::path::{Path, PathBuf};

use sovereign_diagnostics::{Diagnostic, Severity, SourceFile, SourceMap, Span};
use tower_lsp_server::ls_types::{
    self as lsp, DiagnosticRelatedInformation, Location, NumberOrString, Position, Range, Uri,
};

/// How the client counts columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Utf8,
    Utf16,
}

/// Line starts of one text, for converting in both directions.
pub(crate) struct LineIndex<'t> {
    text: &'t str,
    starts: std::borrow::Cow<'t, [u32]>,
}

impl<'t> LineIndex<'t> {
    /// The index of a buffer's text (for the request at hand).
    pub(crate) fn new(text: &'t str) -> Self {
        LineIndex { text, starts: sovereign_diagnostics::line_starts(text).into() }
    }

    /// The index of a loaded file, shared with the renderers: building one
    /// per diagnostic and label was quadratic in a file with many.
    pub(crate) fn of(file: &'t SourceFile) -> Self {
        LineIndex { text: &file.text, starts: std::borrow::Cow::Borrowed(file.line_starts()) }
    }

    pub(crate) fn position(&self, offset: usize, encoding: Encoding) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s as usize <= offset) - 1;
        let start = self.starts[line] as usize;
        let mut end = offset;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let prefix = &self.text[start..end];
        let character = match encoding {
            Encoding::Utf8 => prefix.len(),
            Encoding::Utf16 => prefix.encode_utf16().count(),
        };
        Position {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            character: u32::try_from(character).unwrap_or(u32::MAX),
        }
    }

    /// The byte offset of a position; positions past a line's end or the text's end are clamped.
    pub(crate) fn offset(&self, position: Position, encoding: Encoding) -> usize {
        let Some(start) = self.starts.get(position.line as usize).map(|&s| s as usize) else { return self.text.len() };
        let end = self.starts.get(position.line as usize + 1).map_or(self.text.len(), |&s| s as usize);
        let line = &self.text[start..end];
        let mut units = 0usize;
        for (i, c) in line.char_indices() {
            if units >= position.character as usize || c == '\n' || c == '\r' {
                return start + i;
            }
            units += match encoding {
                Encoding::Utf8 => c.len_utf8(),
                Encoding::Utf16 => c.len_utf16(),
            };
        }
        end
    }

    pub(crate) fn range(&self, span: Span, encoding: Encoding) -> Range {
        Range { start: self.position(span.start as usize, encoding), end: self.position(span.end as usize, encoding) }
    }
}

pub(crate) fn uri_of(path: &Path) -> Option<Uri> {
    Uri::from_file_path(path)
}

pub(crate) fn path_of(uri: &Uri) -> Option<PathBuf> {
    uri.to_file_path().map(|p| p.into_owned())
}

/// A protocol location for a span of a loaded file.
pub(crate) fn location(sources: &SourceMap, span: Span, encoding: Encoding) -> Option<Location> {
    let file = sources.get(span.file)?;
    let uri = uri_of(&file.path)?;
    Some(Location { uri, range: LineIndex::of(file).range(span, encoding) })
}

/// A compiler diagnostic as the protocol shows it: same code, message and
/// span; labels as related information; help appended to the message.
pub(crate) fn diagnostic(sources: &SourceMap, d: &Diagnostic, encoding: Encoding) -> lsp::Diagnostic {
    let range = sources
        .get(d.primary.span.file)
        .map_or_else(Range::default, |file| LineIndex::of(file).range(d.primary.span, encoding));
    let mut message = d.message.clone();
    if !d.primary.message.is_empty() {
        message.push_str(&format!(" ({})", d.primary.message));
    }
    if let Some(help) = &d.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .labels
        .iter()
        .filter_map(|label| {
            Some(DiagnosticRelatedInformation {
                location: location(sources, label.span, encoding)?,
                message: label.message.clone(),
            })
        })
        .collect();
    lsp::Diagnostic {
        range,
        severity: Some(match d.severity {
            Severity::Error => lsp::DiagnosticSeverity::ERROR,
            Severity::Warning => lsp::DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.id.to_owned())),
        source: Some("sovereign".to_owned()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        ..lsp::Diagnostic::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_in_both_encodings() {
        let text = "a\n€x\r\n𝄞y\rz";
        let index = LineIndex::new(text);
        for (offset, _) in text.char_indices() {
            // The middle of a CRLF is not a position an editor can name.
            if text[..offset].ends_with('\r') && text[offset..].starts_with('\n') {
                continue;
            }
            for encoding in [Encoding::Utf8, Encoding::Utf16] {
                let position = index.position(offset, encoding);
                assert_eq!(index.offset(position, encoding), offset, "{offset} {encoding:?}");
            }
        }
        // 𝄞 is two UTF-16 units and four bytes.
        let y = text.find('y').unwrap();
        assert_eq!(index.position(y, Encoding::Utf16), Position { line: 2, character: 2 });
        assert_eq!(index.position(y, Encoding::Utf8), Position { line: 2, character: 4 });
        // Out of range is clamped, never a panic.
        assert_eq!(index.offset(Position { line: 99, character: 0 }, Encoding::Utf16), text.len());
        assert_eq!(index.offset(Position { line: 0, character: 99 }, Encoding::Utf16), 1);
    }
}
