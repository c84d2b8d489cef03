//! Quick fixes: the fixes of the diagnostics under the cursor.

use std::collections::HashMap;

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use crate::lsp::backend::Backend;
use crate::lsp::convert::{LineIndex, diagnostic};

pub(crate) async fn code_action(backend: &Backend, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
    let Some((path, text, Some(snapshot))) = backend.lookup(&params.text_document.uri) else { return Ok(None) };
    let encoding = backend.encoding();
    let uri = params.text_document.uri.clone();
    let current = backend.is_current(&snapshot);
    backend
        .answer("code actions", || {
            // Fixes carry spans of the text that was checked: none for a buffer edited since.
            if !current {
                return Some(Vec::new());
            }
            let file = snapshot.file_of(&path)?;
            let index = LineIndex::new(&text);
            let start = index.offset(params.range.start, encoding);
            let end = index.offset(params.range.end, encoding);
            let mut actions = Vec::new();
            for d in snapshot.diagnostics.iter().filter(|d| d.primary.span.file == file) {
                let span = d.primary.span;
                if (span.end as usize) < start || (span.start as usize) > end {
                    continue;
                }
                for fix in &d.fixes {
                    let edit = TextEdit { range: index.range(fix.span, encoding), new_text: fix.replacement.clone() };
                    actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                        title: fix.title.clone(),
                        kind: Some(CodeActionKind::QUICKFIX),
                        diagnostics: Some(vec![diagnostic(&snapshot.sources, d, encoding)]),
                        edit: Some(WorkspaceEdit {
                            changes: Some(HashMap::from([(uri.clone(), vec![edit])])),
                            ..WorkspaceEdit::default()
                        }),
                        is_preferred: Some(true),
                        ..CodeAction::default()
                    }));
                }
            }
            Some(actions)
        })
        .await
}
