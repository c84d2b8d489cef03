//! Completion: kinds, properties, values and declared names that fit the
//! cursor's place in the schema.

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use crate::lsp::backend::Backend;
use crate::lsp::convert::LineIndex;
use crate::lsp::features::{self, CompletionKind, Context};

pub(crate) async fn completion(backend: &Backend, params: CompletionParams) -> Result<Option<CompletionResponse>> {
    let position = params.text_document_position;
    let Some((_, text, snapshot)) = backend.lookup(&position.text_document.uri) else { return Ok(None) };
    let encoding = backend.encoding();
    backend
        .answer("completion", || {
            // One index for the request, not one per item.
            let index = LineIndex::new(&text);
            let offset = index.offset(position.position, encoding);
            let context: Context<'_> = features::context(&backend.shared.stdlib.schema, &text, offset);
            let items = features::completions(&backend.shared.stdlib.schema, snapshot.as_deref(), &context)
                .into_iter()
                .map(|c| CompletionItem {
                    label: c.label.clone(),
                    kind: Some(completion_kind(c.kind)),
                    detail: (!c.detail.is_empty()).then_some(c.detail),
                    documentation: (!c.doc.is_empty()).then_some(Documentation::String(c.doc)),
                    filter_text: Some(c.label.clone()),
                    text_edit: c.replace.map(|span| {
                        CompletionTextEdit::Edit(TextEdit {
                            range: index.range(span, encoding),
                            new_text: c.insert.clone(),
                        })
                    }),
                    insert_text: Some(c.insert),
                    ..CompletionItem::default()
                })
                .collect();
            Some(CompletionResponse::Array(items))
        })
        .await
}

fn completion_kind(kind: CompletionKind) -> CompletionItemKind {
    match kind {
        CompletionKind::Node => CompletionItemKind::CLASS,
        CompletionKind::Property => CompletionItemKind::PROPERTY,
        CompletionKind::Value => CompletionItemKind::ENUM_MEMBER,
        CompletionKind::Reference => CompletionItemKind::REFERENCE,
    }
}
