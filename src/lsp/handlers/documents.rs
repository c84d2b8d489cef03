//! Buffers opened, edited, saved and closed: each change is applied to the
//! buffer and its root spec is checked again in the background.

use std::sync::Arc;

use sovereign_check::Host as _;
use tower_lsp_server::ls_types::*;

use crate::host::DiskHost;
use crate::lsp::backend::{Backend, guarded, lock};
use crate::lsp::convert::{LineIndex, path_of};
use crate::lsp::workspace::Document;

pub(crate) async fn did_open(backend: &Backend, params: DidOpenTextDocumentParams) {
    let Some(path) = path_of(&params.text_document.uri).map(|p| DiskHost.canonical(&p)) else { return };
    lock(&backend.workspace).documents.insert(
        path.clone(),
        Document { text: Arc::new(params.text_document.text), version: params.text_document.version },
    );
    backend.schedule_check(path);
}

pub(crate) async fn did_change(backend: &Backend, params: DidChangeTextDocumentParams) {
    let Some(path) = path_of(&params.text_document.uri).map(|p| DiskHost.canonical(&p)) else { return };
    let encoding = backend.encoding();
    let applied = guarded("applying an edit", || {
        let mut workspace = lock(&backend.workspace);
        // Edits apply to what was opened; a change to a buffer never opened is ignored.
        let Some(mut text) = workspace.documents.get(&path).map(|d| (*d.text).clone()) else {
            return false;
        };
        for change in params.content_changes {
            match change.range {
                Some(range) => {
                    let index = LineIndex::new(&text);
                    let start = index.offset(range.start, encoding);
                    let end = index.offset(range.end, encoding).max(start);
                    text.replace_range(start..end, &change.text);
                }
                None => text = change.text,
            }
        }
        workspace
            .documents
            .insert(path.clone(), Document { text: Arc::new(text), version: params.text_document.version });
        true
    });
    match applied {
        Ok(true) => backend.schedule_check(path),
        Ok(false) => {
            let message = format!("ignored a change to {}, which was not opened", path.display());
            backend.client.log_message(MessageType::WARNING, message).await;
        }
        Err(message) => backend.client.log_message(MessageType::ERROR, message).await,
    }
}

pub(crate) async fn did_save(backend: &Backend, params: DidSaveTextDocumentParams) {
    if let Some(path) = path_of(&params.text_document.uri).map(|p| DiskHost.canonical(&p)) {
        backend.schedule_check(path);
    }
}

pub(crate) async fn did_close(backend: &Backend, params: DidCloseTextDocumentParams) {
    if let Some(path) = path_of(&params.text_document.uri).map(|p| DiskHost.canonical(&p)) {
        lock(&backend.workspace).documents.remove(&path);
        // Other open files may import it: their view falls back to the disk.
        backend.schedule_check(path);
    }
}
