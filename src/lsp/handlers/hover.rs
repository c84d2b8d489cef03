//! Hover: the schema's documentation of what is under the cursor, and for
//! a declaration what the analysis decided about it.

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use crate::lsp::backend::Backend;
use crate::lsp::convert::LineIndex;
use crate::lsp::features;

pub(crate) async fn hover(backend: &Backend, params: HoverParams) -> Result<Option<Hover>> {
    let position = params.text_document_position_params;
    let Some((path, text, snapshot)) = backend.lookup(&position.text_document.uri) else { return Ok(None) };
    let encoding = backend.encoding();
    backend
        .answer("hover", || {
            let offset = LineIndex::new(&text).offset(position.position, encoding);
            let context = features::context(&backend.shared.stdlib.schema, &text, offset);
            let file = snapshot.as_deref().and_then(|s| s.file_of(&path));
            let markdown = features::hover(snapshot.as_deref(), &context, file, offset)?;
            Some(Hover {
                contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: markdown }),
                range: None,
            })
        })
        .await
}
