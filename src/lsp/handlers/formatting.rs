//! Formatting a buffer with `sovereign fmt`'s formatter, on a blocking thread.

use sovereign_diagnostics::{FileId, Span};
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use crate::lsp::backend::Backend;
use crate::lsp::convert::LineIndex;

pub(crate) async fn formatting(backend: &Backend, params: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
    let Some((_, text, _)) = backend.lookup(&params.text_document.uri) else { return Ok(None) };
    let encoding = backend.encoding();
    backend
        .answer_blocking("formatting", move || {
            // A buffer with syntax errors is left alone; its diagnostics say why.
            let formatted = sovereign_syntax::format(&text).ok()?;
            if formatted == *text {
                return Some(Vec::new());
            }
            let range = LineIndex::new(&text).range(Span::new(FileId(0), 0, text.len()), encoding);
            Some(vec![TextEdit { range, new_text: formatted }])
        })
        .await
}
