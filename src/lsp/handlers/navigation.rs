//! Go to definition and find references of declared names.

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use crate::lsp::backend::Backend;
use crate::lsp::convert::{LineIndex, location};
use crate::lsp::features;

pub(crate) async fn goto_definition(
    backend: &Backend,
    params: GotoDefinitionParams,
) -> Result<Option<GotoDefinitionResponse>> {
    let position = params.text_document_position_params;
    let Some((path, text, Some(snapshot))) = backend.lookup(&position.text_document.uri) else { return Ok(None) };
    let encoding = backend.encoding();
    backend
        .answer("definition", || {
            let offset = LineIndex::new(&text).offset(position.position, encoding);
            let id = features::item_at(&snapshot, snapshot.file_of(&path)?, offset)?;
            let name = snapshot.fabric.item(id).name.as_ref()?;
            location(&snapshot.sources, name.span, encoding).map(GotoDefinitionResponse::Scalar)
        })
        .await
}

pub(crate) async fn references(backend: &Backend, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
    let position = params.text_document_position;
    let Some((path, text, Some(snapshot))) = backend.lookup(&position.text_document.uri) else { return Ok(None) };
    let encoding = backend.encoding();
    backend
        .answer("references", || {
            let offset = LineIndex::new(&text).offset(position.position, encoding);
            let id = features::item_at(&snapshot, snapshot.file_of(&path)?, offset)?;
            let spans = features::references(&snapshot, id, params.context.include_declaration);
            Some(spans.into_iter().filter_map(|s| location(&snapshot.sources, s, encoding)).collect())
        })
        .await
}
