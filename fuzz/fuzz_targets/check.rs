//! Fuzzes parse + check + analysis (as `sovereign check` runs them): any
//! bytes must give diagnostics, never a panic, and every diagnostic must
//! point inside its file on char boundaries.
#![no_main]

#[path = "shared.rs"]
mod shared;

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sovereign_check::EmptyHost;
use sovereign_diagnostics::{Format, RenderConfig, render};

fuzz_target!(|data: &[u8]| {
    let checked = sovereign_analyze::compile(shared::stdlib(), Path::new("fuzz.kdl"), data.to_vec(), &EmptyHost);
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
