//! Files, spans and the line index used only when rendering.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// Identifies one source file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u32);

/// A byte range in one file. Invariant: `start <= end`, both on char boundaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    #[must_use]
    pub fn new(file: FileId, start: usize, end: usize) -> Self {
        // Specs larger than 4 GiB are rejected when read, so offsets fit.
        Span { file, start: u32::try_from(start).unwrap_or(u32::MAX), end: u32::try_from(end).unwrap_or(u32::MAX) }
    }

    #[must_use]
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    #[must_use]
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    #[must_use]
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// The smallest span covering both (same file assumed).
    #[must_use]
    pub fn cover(self, other: Span) -> Span {
        Span { file: self.file, start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

/// A 1-based line and column; the column counts Unicode scalar values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

/// One loaded file: its display path and text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The path as the user should see it (relative when the user gave it so).
    pub path: PathBuf,
    /// Shared so that a map can be cloned cheaply (the fuzzer, the editor);
    /// `Arc<String>`, not `Arc<str>`, so a file read as a `String` is not copied.
    pub text: Arc<String>,
    /// Where the file came from.
    pub origin: Origin,
    /// Built on first use and shared by every renderer and clone: finding a
    /// line by scanning from the start per diagnostic was quadratic.
    lines: Arc<OnceLock<Box<[u32]>>>,
    /// Where invalid UTF-8 was replaced by U+FFFD: (offset in `text` just
    /// after the replacement, original minus decoded offset from there on).
    /// Empty for valid files.
    replaced: Arc<[(u32, i64)]>,
}

/// Where a source file came from: reports count and show only spec files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file of the user's spec.
    Spec,
    /// A file of the stdlib (embedded or `--stdlib`).
    Stdlib,
}

/// Bytes decoded as UTF-8, invalid sequences replaced by U+FFFD, with what
/// is needed to give byte offsets of the original file back.
#[derive(Clone, Debug, Default)]
pub struct Decoded {
    pub text: String,
    /// The offset in `text` of the first replacement, if any.
    pub first_invalid: Option<usize>,
    replaced: Vec<(u32, i64)>,
}

impl Decoded {
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        let bytes = match String::from_utf8(bytes) {
            Ok(text) => return Decoded { text, first_invalid: None, replaced: Vec::new() },
            Err(error) => error.into_bytes(),
        };
        let mut text = String::with_capacity(bytes.len() + 16);
        let mut replaced = Vec::new();
        let mut shift = 0i64;
        for chunk in bytes.utf8_chunks() {
            text.push_str(chunk.valid());
            if !chunk.invalid().is_empty() {
                text.push('\u{FFFD}');
                shift += i64::try_from(chunk.invalid().len()).unwrap_or(0) - 3;
                replaced.push((u32::try_from(text.len()).unwrap_or(u32::MAX), shift));
            }
        }
        let first_invalid = replaced.first().map(|&(after, _)| after as usize - '\u{FFFD}'.len_utf8());
        Decoded { text, first_invalid, replaced }
    }
}

/// Every file a run has read, indexed by [`FileId`].
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    #[must_use]
    pub fn new() -> Self {
        SourceMap::default()
    }

    /// Adds a spec file.
    pub fn add(&mut self, path: PathBuf, text: impl Into<String>) -> FileId {
        self.add_with(path, text.into(), Origin::Spec, Vec::new())
    }

    /// Adds a stdlib file.
    pub fn add_stdlib(&mut self, path: PathBuf, text: impl Into<String>) -> FileId {
        self.add_with(path, text.into(), Origin::Stdlib, Vec::new())
    }

    /// Adds a spec file read as bytes and decoded.
    pub fn add_decoded(&mut self, path: PathBuf, decoded: Decoded) -> FileId {
        self.add_with(path, decoded.text, Origin::Spec, decoded.replaced)
    }

    fn add_with(&mut self, path: PathBuf, text: String, origin: Origin, replaced: Vec<(u32, i64)>) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).expect("fewer than 4 billion files"));
        self.files.push(SourceFile {
            path,
            text: Arc::new(text),
            origin,
            lines: Arc::default(),
            replaced: replaced.into(),
        });
        id
    }

    #[must_use]
    pub fn get(&self, file: FileId) -> Option<&SourceFile> {
        self.files.get(file.0 as usize)
    }

    #[must_use]
    pub fn text(&self, file: FileId) -> &str {
        self.get(file).map_or("", |f| f.text.as_str())
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate().map(|(i, f)| (FileId(u32::try_from(i).unwrap_or(u32::MAX)), f))
    }

    /// The spec's files (not the stdlib's).
    pub fn spec_files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files().filter(|(_, f)| f.origin == Origin::Spec)
    }

    /// The path of a file with `/` separators, for machine-readable output.
    #[must_use]
    pub fn display_path(&self, file: FileId) -> String {
        self.get(file).map_or_else(String::new, |f| f.path.to_string_lossy().replace('\\', "/"))
    }

    /// Line and column of a byte offset. Lines end at LF, CRLF or CR, as
    /// editors count them.
    #[must_use]
    pub fn line_col(&self, file: FileId, offset: u32) -> LineCol {
        let Some(source) = self.get(file) else { return LineCol { line: 1, column: 1 } };
        let text = source.text.as_str();
        let offset = (offset as usize).min(text.len());
        let line = source.line_of(offset);
        let line_start = source.line_start(line);
        let column = text.get(line_start..offset).map_or(offset - line_start, |s| s.chars().count()) + 1;
        LineCol { line: line + 1, column }
    }

    /// The offset in the file as it is on disk: differs from `offset` after
    /// invalid UTF-8, where each replaced sequence became three bytes.
    #[must_use]
    pub fn original_offset(&self, file: FileId, offset: u32) -> u32 {
        let Some(source) = self.get(file) else { return offset };
        let replaced = &source.replaced;
        let i = replaced.partition_point(|&(after, _)| after <= offset);
        let shift = if i == 0 { 0 } else { replaced[i - 1].1 };
        // Inside a replacement character: the start of the bytes it replaced.
        let offset = match replaced.get(i) {
            Some(&(after, _)) if after - 3 < offset => after - 3,
            _ => offset,
        };
        u32::try_from(i64::from(offset) + shift).unwrap_or(u32::MAX)
    }
}

impl SourceFile {
    /// Offsets where lines start (after LF, CRLF or a lone CR); the first is 0.
    #[must_use]
    pub fn line_starts(&self) -> &[u32] {
        self.lines()
    }

    fn lines(&self) -> &[u32] {
        self.lines.get_or_init(|| line_starts(&self.text).into_boxed_slice())
    }

    /// The 0-based line holding `offset`.
    #[must_use]
    pub fn line_of(&self, offset: usize) -> usize {
        let offset = u32::try_from(offset).unwrap_or(u32::MAX);
        self.lines().partition_point(|&start| start <= offset).saturating_sub(1)
    }

    /// Where the 0-based `line` starts (the end of the text past the last).
    #[must_use]
    pub fn line_start(&self, line: usize) -> usize {
        self.lines().get(line).map_or(self.text.len(), |&s| s as usize)
    }

    /// The number of lines.
    #[must_use]
    pub fn line_count(&self) -> usize {
        self.lines().len()
    }

    /// The text of the 0-based `line`, without its line break.
    #[must_use]
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_start(line);
        let end = self.line_start(line + 1).min(self.text.len());
        self.text.get(start..end).unwrap_or("").trim_end_matches(['\n', '\r'])
    }
}

/// Offsets where the lines of `text` start: after LF, CRLF or a lone CR, as
/// editors count them; the first is 0.
#[must_use]
pub fn line_starts(text: &str) -> Vec<u32> {
    let bytes = text.as_bytes();
    let mut starts = vec![0u32];
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            starts.push(u32::try_from(i + 1).unwrap_or(u32::MAX));
        }
    }
    starts
}
