//! Renaming a declared name and every reference to it, across files.

use std::collections::HashMap;

use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

use crate::lsp::backend::{Backend, guarded};
use crate::lsp::convert::{LineIndex, location};
use crate::lsp::features;

pub(crate) async fn prepare_rename(
    backend: &Backend,
    params: TextDocumentPositionParams,
) -> Result<Option<PrepareRenameResponse>> {
    let Some((path, text, Some(snapshot))) = backend.lookup(&params.text_document.uri) else { return Ok(None) };
    let encoding = backend.encoding();
    backend
        .answer("prepare rename", || {
            let index = LineIndex::new(&text);
            let offset = index.offset(params.position, encoding);
            let file = snapshot.file_of(&path)?;
            let id = features::item_at(&snapshot, file, offset)?;
            let name = snapshot.fabric.item(id).name.as_ref()?;
            // The span under the cursor, in this file.
            let span = features::references(&snapshot, id, true)
                .into_iter()
                .find(|s| s.file == file && s.start as usize <= offset && offset <= s.end as usize)?;
            Some(PrepareRenameResponse::RangeWithPlaceholder {
                range: index.range(span, encoding),
                placeholder: name.text().to_owned(),
            })
        })
        .await
}

pub(crate) async fn rename(backend: &Backend, params: RenameParams) -> Result<Option<WorkspaceEdit>> {
    let position = params.text_document_position;
    let Some((path, text, Some(snapshot))) = backend.lookup(&position.text_document.uri) else { return Ok(None) };
    let encoding = backend.encoding();
    if !backend.is_current(&snapshot) {
        return Err(Error::invalid_params("the spec changed since it was last checked; rename again in a moment"));
    }
    let outcome = guarded("rename", || {
        let offset = LineIndex::new(&text).offset(position.position, encoding);
        let id = snapshot.file_of(&path).and_then(|f| features::item_at(&snapshot, f, offset));
        id.map(|id| features::rename(&snapshot, id, &params.new_name))
    });
    match outcome {
        Ok(None) => Ok(None),
        Ok(Some(Err(message))) => Err(Error::invalid_params(message)),
        Ok(Some(Ok(edits))) => {
            let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
            for (span, new_text) in edits {
                if let Some(location) = location(&snapshot.sources, span, encoding) {
                    changes.entry(location.uri).or_default().push(TextEdit { range: location.range, new_text });
                }
            }
            Ok(Some(WorkspaceEdit { changes: Some(changes), ..WorkspaceEdit::default() }))
        }
        Err(message) => {
            backend.client.log_message(MessageType::ERROR, &message).await;
            Err(Error::internal_error())
        }
    }
}
