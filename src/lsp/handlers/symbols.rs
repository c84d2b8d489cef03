//! The outline of a file: its declarations, nested.

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use crate::lsp::backend::Backend;
use crate::lsp::convert::{Encoding, LineIndex};
use crate::lsp::features;

pub(crate) async fn document_symbol(
    backend: &Backend,
    params: DocumentSymbolParams,
) -> Result<Option<DocumentSymbolResponse>> {
    let Some((path, _, Some(snapshot))) = backend.lookup(&params.text_document.uri) else { return Ok(None) };
    let encoding = backend.encoding();
    backend
        .answer("document symbols", || {
            let file = snapshot.file_of(&path)?;
            // The spans are those of the checked text.
            let index = LineIndex::of(snapshot.sources.get(file)?);
            #[allow(deprecated)]
            fn convert(s: features::Symbol, index: &LineIndex<'_>, encoding: Encoding) -> DocumentSymbol {
                DocumentSymbol {
                    name: s.name,
                    detail: Some(s.kind.clone()),
                    kind: symbol_kind(&s.kind),
                    tags: None,
                    deprecated: None,
                    range: index.range(s.span, encoding),
                    selection_range: index.range(s.name_span, encoding),
                    children: Some(s.children.into_iter().map(|c| convert(c, index, encoding)).collect()),
                }
            }
            let symbols =
                features::symbols(&snapshot, file).into_iter().map(|s| convert(s, &index, encoding)).collect();
            Some(DocumentSymbolResponse::Nested(symbols))
        })
        .await
}

fn symbol_kind(kind: &str) -> SymbolKind {
    match kind {
        "site" | "fabric" => SymbolKind::NAMESPACE,
        "node" | "pool" | "fleet" => SymbolKind::OBJECT,
        "serve" | "eval" | "edge" => SymbolKind::FUNCTION,
        "dataset" | "model" | "secret" | "ledger" => SymbolKind::CONSTANT,
        _ => SymbolKind::STRUCT,
    }
}
