//! What a terminal snippet shows: only the lines around a diagnostic's
//! labels, made safe to print.
//!
//! Handing miette the whole file cost a copy and a scan from the start per
//! diagnostic (quadratic in a spec with many errors), let a column past
//! 65,535 overflow its formatter, and sent the spec's control characters
//! (escape sequences, BEL, lone CR) to the user's terminal. An excerpt holds
//! only the lines near the labels; it escapes control and bidirectional
//! characters, cuts long lines around the labels, ends every line with LF,
//! masks redacted spans, and maps every offset from the file to itself.

use std::borrow::Cow;
use std::fmt::Write as _;

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use crate::{SourceFile, SourceMap, Span};

/// Lines longer than this (in chars) are cut around the labels on them.
const LONG_LINE: usize = 160;
/// How many chars are kept on each side of a label's start and end.
const KEEP: usize = 40;

/// Whether a char must not reach a terminal as it is: C0 and C1 controls
/// (but tab), DEL, and the bidirectional controls of "Trojan Source".
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\t' && c != '\n')
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// `text` with every unsafe char (see above) and every line break written
/// as a `\u{…}` escape: for messages, labels and help, which are one line.
#[must_use]
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| unsafe_char(c) || c == '\n') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) || c == '\n' {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A piece of the excerpt and the bytes of the file it shows.
#[derive(Clone, Copy, Debug)]
struct Segment {
    orig: u32,
    orig_len: u32,
    new: u32,
    new_len: u32,
    /// Copied byte for byte (else replaced: an escape, a cut, a line break).
    copied: bool,
}

/// The lines of one file that one view of a diagnostic shows.
#[derive(Debug)]
pub(crate) struct Excerpt {
    file: crate::FileId,
    name: String,
    text: String,
    segments: Vec<Segment>,
    /// The line of the file each line of the excerpt is (0-based).
    lines: Vec<usize>,
    /// The true line and column (0-based, in chars) of each label's start,
    /// by its offset in the excerpt, for the `[file:line:column]` header.
    starts: Vec<(usize, usize, usize)>,
}

impl Excerpt {
    /// The lines around `spans` (all in `file`), with `redactions` masked.
    pub(crate) fn new(sources: &SourceMap, file: crate::FileId, spans: &[Span], redactions: &[Span]) -> Excerpt {
        let name = printable(&sources.display_path(file)).into_owned();
        let Some(source) = sources.get(file) else {
            return Excerpt {
                file,
                name,
                text: String::new(),
                segments: Vec::new(),
                lines: Vec::new(),
                starts: Vec::new(),
            };
        };
        // A final line break ends the last line; it does not start an empty one.
        let count = source.line_count();
        let last_line = count.saturating_sub(if count > 1 && source.line_text(count - 1).is_empty() { 2 } else { 1 });
        // Each label's lines, one of context either side, merged when they touch.
        let mut windows: Vec<(usize, usize)> = spans
            .iter()
            .map(|s| {
                let first = source.line_of(s.start as usize);
                let last = source.line_of((s.end as usize).max(s.start as usize + 1) - 1).max(first);
                (first.saturating_sub(1), (last + 1).min(last_line).max(last))
            })
            .collect();
        windows.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (a, b) in windows {
            match merged.last_mut() {
                Some(last) if a <= last.1 + 1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        let mut excerpt =
            Excerpt { file, name, text: String::new(), segments: Vec::new(), lines: Vec::new(), starts: Vec::new() };
        for (a, b) in merged {
            for line in a..=b {
                excerpt.push_line(source, line, spans, redactions);
            }
        }
        for span in spans {
            let at = sources.line_col(file, span.start);
            excerpt.starts.push((excerpt.map(span.start, false), at.line - 1, at.column - 1));
        }
        excerpt
    }

    fn push_line(&mut self, source: &SourceFile, line: usize, spans: &[Span], redactions: &[Span]) {
        self.lines.push(line);
        let start = source.line_start(line);
        let text = source.line_text(line);
        let end = start + text.len();
        // Which char ranges (by byte offset) to keep: all of a short line;
        // around each label end on a long one.
        // Counted only when the byte length leaves it open: a line of many
        // diagnostics must not be walked once per diagnostic.
        let short = text.len() <= LONG_LINE || (text.len() <= 4 * LONG_LINE && text.chars().count() <= LONG_LINE);
        let keep: Vec<(usize, usize)> = if short {
            vec![(start, end)]
        } else {
            let mut points: Vec<usize> = spans
                .iter()
                .flat_map(|s| [s.start as usize, s.end as usize])
                .filter(|&p| (start..=end).contains(&p))
                .collect();
            points.sort_unstable();
            let mut ranges: Vec<(usize, usize)> = Vec::new();
            for p in points {
                let (a, b) = (back(source, p, KEEP, start), forward(source, p, KEEP, end));
                match ranges.last_mut() {
                    Some(last) if a <= last.1 => last.1 = last.1.max(b),
                    _ => ranges.push((a, b)),
                }
            }
            if ranges.is_empty() {
                ranges.push((start, forward(source, start, LONG_LINE, end)));
            }
            ranges
        };
        let mut at = start;
        for (a, b) in keep {
            if a > at {
                self.replaced(at, a - at, "…");
            }
            self.copy(source, a, b, redactions);
            at = b;
        }
        if end > at {
            self.replaced(at, end - at, "…");
        }
        let next = source.line_start(line + 1).max(end);
        self.replaced(end, next - end, "\n");
    }

    /// Copies `start..end` of the file, escaping unsafe chars and masking redactions.
    fn copy(&mut self, source: &SourceFile, start: usize, end: usize, redactions: &[Span]) {
        let text = &source.text[start..end];
        let mut run = start;
        for (i, c) in text.char_indices() {
            let offset = start + i;
            let masked =
                redactions.iter().any(|r| r.file == self.file && (r.start as usize..r.end as usize).contains(&offset));
            if masked || unsafe_char(c) {
                self.copied(source, run, offset);
                let replacement = if masked { "*".repeat(c.len_utf8()) } else { format!("\\u{{{:x}}}", u32::from(c)) };
                if masked {
                    // Same length: offsets inside stay exact.
                    self.push(offset, c.len_utf8(), &replacement, true);
                } else {
                    self.replaced(offset, c.len_utf8(), &replacement);
                }
                run = offset + c.len_utf8();
            }
        }
        self.copied(source, run, end);
    }

    fn copied(&mut self, source: &SourceFile, start: usize, end: usize) {
        if end > start {
            let text = source.text[start..end].to_owned();
            self.push(start, end - start, &text, true);
        }
    }

    fn replaced(&mut self, orig: usize, orig_len: usize, text: &str) {
        self.push(orig, orig_len, text, false);
    }

    fn push(&mut self, orig: usize, orig_len: usize, text: &str, copied: bool) {
        let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.segments.push(Segment {
            orig: to_u32(orig),
            orig_len: to_u32(orig_len),
            new: to_u32(self.text.len()),
            new_len: to_u32(text.len()),
            copied,
        });
        self.text.push_str(text);
    }

    /// Where an offset of the file is in the excerpt. An offset inside a
    /// replaced piece maps to its start (or, for the end of a span, its end).
    fn map(&self, offset: u32, is_end: bool) -> usize {
        let i = self.segments.partition_point(|s| s.orig <= offset);
        let Some(segment) = i.checked_sub(1).map(|i| self.segments[i]) else { return 0 };
        let inside = offset - segment.orig;
        let mapped = if inside >= segment.orig_len {
            segment.new + segment.new_len
        } else if segment.copied {
            segment.new + inside
        } else if is_end && inside > 0 {
            segment.new + segment.new_len
        } else {
            segment.new
        };
        mapped as usize
    }

    /// A span of the file as a span of the excerpt.
    pub(crate) fn span(&self, span: Span) -> SourceSpan {
        let start = self.map(span.start, false);
        let end = self.map(span.end, true).max(start);
        SourceSpan::new(start.into(), end - start)
    }
}

/// The offset `n` chars before `p`, not before `floor`.
fn back(source: &SourceFile, p: usize, n: usize, floor: usize) -> usize {
    source.text[floor..p.min(source.text.len())].char_indices().rev().nth(n).map_or(floor, |(i, _)| floor + i)
}

/// The offset `n` chars after `p`, not after `ceiling`.
fn forward(source: &SourceFile, p: usize, n: usize, ceiling: usize) -> usize {
    let p = p.min(ceiling);
    source.text[p..ceiling].char_indices().nth(n).map_or(ceiling, |(i, _)| p + i)
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.read_span(span, context_lines_before, context_lines_after)?;
        let line = self.lines.get(inner.line()).copied().unwrap_or(inner.line());
        // The header's position is the file's, not the excerpt's.
        let (line, column) = match self.starts.iter().find(|(at, ..)| *at == span.offset()) {
            Some(&(_, line, column)) if context_lines_before == 0 && context_lines_after == 0 => (line, column),
            _ => (line, inner.column()),
        };
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            line,
            column,
            inner.line_count(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FileId;

    fn excerpt(text: &str, spans: &[(u32, u32)]) -> (Excerpt, Vec<SourceSpan>) {
        let mut sources = SourceMap::new();
        let file = sources.add("f.kdl".into(), text);
        let spans: Vec<Span> = spans.iter().map(|&(a, b)| Span { file, start: a, end: b }).collect();
        let e = Excerpt::new(&sources, file, &spans, &[]);
        let mapped = spans.iter().map(|&s| e.span(s)).collect();
        (e, mapped)
    }

    #[test]
    fn only_lines_near_labels_are_kept() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let at = text.find("line 50").unwrap() as u32;
        let (e, spans) = excerpt(&text, &[(at, at + 4)]);
        assert_eq!(e.text, "line 49\nline 50\nline 51\n");
        assert_eq!(e.lines, vec![49, 50, 51]);
        assert_eq!(&e.text[spans[0].offset()..spans[0].offset() + spans[0].len()], "line");
    }

    #[test]
    fn control_chars_and_lone_cr_are_escaped_or_broken() {
        let (e, spans) = excerpt("a \u{1b}[2J b\rc \u{7}", &[(7, 8)]);
        assert_eq!(e.text, "a \\u{1b}[2J b\nc \\u{7}\n");
        assert_eq!(&e.text[spans[0].offset()..spans[0].offset() + 1], "b");
        assert!(!e.text.contains('\r') && !e.text.contains('\u{1b}'));
    }

    #[test]
    fn long_lines_are_cut_around_labels() {
        let text = format!("{}bogus{}", "x ".repeat(50_000), " y".repeat(50_000));
        let at = 100_000u32;
        let (e, spans) = excerpt(&text, &[(at, at + 5)]);
        assert!(e.text.len() < 200, "{}", e.text.len());
        assert_eq!(&e.text[spans[0].offset()..spans[0].offset() + 5], "bogus");
        // The header still says where it really is.
        assert_eq!(e.starts[0], (spans[0].offset(), 0, 100_000));
        let _ = FileId(0);
    }

    #[test]
    fn printable_escapes_controls_and_bidi() {
        assert_eq!(printable("plain"), "plain");
        assert_eq!(printable("a\u{1b}]0;x\u{7}b\u{202E}"), "a\\u{1b}]0;x\\u{7}b\\u{202e}");
    }
}
