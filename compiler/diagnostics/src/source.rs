//! Files, spans and the line index used only when rendering.

use std::path::PathBuf;
use std::sync::Arc;

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

    pub fn add(&mut self, path: PathBuf, text: impl Into<String>) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).expect("fewer than 4 billion files"));
        self.files.push(SourceFile { path, text: Arc::new(text.into()) });
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

    /// The path of a file with `/` separators, for machine-readable output.
    #[must_use]
    pub fn display_path(&self, file: FileId) -> String {
        self.get(file).map_or_else(String::new, |f| f.path.to_string_lossy().replace('\\', "/"))
    }

    /// Line and column of a byte offset. Lines end at LF, CRLF or CR, as
    /// editors count them.
    #[must_use]
    pub fn line_col(&self, file: FileId, offset: u32) -> LineCol {
        let text = self.text(file);
        let offset = (offset as usize).min(text.len());
        let before = &text.as_bytes()[..offset];
        let mut line = 1;
        let mut line_start = 0;
        let mut i = 0;
        while i < before.len() {
            match before[i] {
                b'\n' => {
                    line += 1;
                    line_start = i + 1;
                }
                b'\r' if before.get(i + 1) != Some(&b'\n') => {
                    line += 1;
                    line_start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        let column = text.get(line_start..offset).map_or(offset - line_start, |s| s.chars().count()) + 1;
        LineCol { line, column }
    }
}
