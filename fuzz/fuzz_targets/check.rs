//! Fuzzes parse + check + analysis (as `sovereign check` runs them): any
//! bytes must give diagnostics, never a panic, and every diagnostic must
//! point inside its file on char boundaries.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sovereign_check::{EmptyHost, Schema};
use sovereign_diagnostics::{Format, RenderConfig, SourceMap, render};

/// The schema is the same for every input; loading it per run made the
/// target ~100× slower than the code under test.
fn schema() -> &'static (Schema, SourceMap) {
    static SCHEMA: OnceLock<(Schema, SourceMap)> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut sources = SourceMap::new();
        let (schema, _) = sovereign_check::embedded_schema(&mut sources);
        (schema, sources)
    })
}

fuzz_target!(|data: &[u8]| {
    let (schema, sources) = schema();
    let (checked, _) =
        sovereign_analyze::check_and_analyze(Path::new("fuzz.kdl"), data.to_vec(), &EmptyHost, schema, sources.clone());
    for d in &checked.diagnostics {
        let text = checked.sources.text(d.primary.span.file);
        assert!(d.primary.span.end as usize <= text.len(), "span past the end");
        assert!(text.is_char_boundary(d.primary.span.start as usize) && text.is_char_boundary(d.primary.span.end as usize));
    }
    // Rendering must not panic either; it is costly, so only some inputs
    // (chosen by content, to stay deterministic) go through it.
    if data.first().is_some_and(|b| b % 8 == 0) {
        let _ = render(&checked.diagnostics, &checked.sources, Format::Human, RenderConfig { color: false, width: 80 });
        let _ = render(&checked.diagnostics, &checked.sources, Format::Sarif, RenderConfig { color: false, width: 80 });
    }
});
