//! Fuzzes parse + check: any bytes must give diagnostics, never a panic,
//! and every diagnostic must point inside its file on char boundaries.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sovereign_check::EmptyHost;
use sovereign_diagnostics::{Format, RenderConfig, SourceMap, render};

fuzz_target!(|data: &[u8]| {
    let mut sources = SourceMap::new();
    let (schema, _) = sovereign_check::embedded_schema(&mut sources);
    let checked = sovereign_check::check(Path::new("fuzz.kdl"), data.to_vec(), &EmptyHost, &schema, sources);
    for d in &checked.diagnostics {
        let text = checked.sources.text(d.primary.span.file);
        assert!(d.primary.span.end as usize <= text.len(), "span past the end");
        assert!(text.is_char_boundary(d.primary.span.start as usize) && text.is_char_boundary(d.primary.span.end as usize));
    }
    // Rendering must not panic either.
    let _ = render(&checked.diagnostics, &checked.sources, Format::Human, RenderConfig { color: false, width: 80 });
    let _ = render(&checked.diagnostics, &checked.sources, Format::Sarif, RenderConfig { color: false, width: 80 });
});
