//! `sovereign lsp`: the language server (LSP 3.17 over stdio).
//!
//! Every edit re-checks the buffer's root spec on a blocking thread and
//! publishes the diagnostics of every file it loaded, the same codes,
//! messages and spans as `sovereign check`; results of an older edit are
//! dropped. Requests never wait for a check: hover and completion parse
//! the buffer as it is (the parser recovers from any error), and names come
//! from the latest snapshot.
//!
//! A panic inside a request is caught, logged, and answered with an
//! internal error; the server keeps running.
//!
//! Layout: `framing` guards the byte stream before tower-lsp sees it;
//! `backend` holds the state and answers requests; `scheduler` runs the
//! background checks; `handlers/` has one module per feature, turning the
//! protocol's types into calls of the pure cursor logic in `features`
//! (which knows nothing of the protocol) and back, with `convert` for
//! positions; `workspace` is the buffers and the snapshots.

mod backend;
mod convert;
mod features;
mod framing;
mod handlers;
mod scheduler;
mod workspace;

use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{LanguageServer, LspService, Server};

use self::backend::{Backend, Shared};
use self::convert::Encoding;
use self::workspace::Workspace;

/// The command that panics on purpose, to test that panics are contained.
/// Offered only when `SOVEREIGN_LSP_TEST_PANIC=1`.
const PANIC_COMMAND: &str = "sovereign.test.panic";

pub(crate) fn run(stdlib: Option<&Path>) -> ExitCode {
    // The schema is read before the session starts: a broken `--stdlib` is
    // a usage error on stderr, as for `check`.
    let stdlib = match stdlib {
        Some(dir) => match crate::check_command::read_stdlib(dir) {
            Ok((stdlib, diagnostics)) if !diagnostics.iter().any(sovereign_diagnostics::Diagnostic::is_error) => stdlib,
            Ok(_) => {
                eprintln!("error: the stdlib in {} is invalid; `sovereign check --stdlib` shows why", dir.display());
                return ExitCode::from(2);
            }
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        },
        None => crate::check_command::embedded_stdlib().clone(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the language server: {error}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        let shared = Arc::new(Shared { stdlib });
        let (service, socket) = LspService::new(|client| Backend {
            client,
            shared,
            workspace: Arc::new(Mutex::new(Workspace::default())),
            encoding: OnceLock::new(),
        });
        // The editor's frames go through the guard; the server reads and
        // writes in-memory pipes (see `framing`).
        let (server_in, guard_in) = tokio::io::duplex(1 << 16);
        let (guard_out, server_out) = tokio::io::duplex(1 << 16);
        let output = Arc::new(tokio::sync::Mutex::new(tokio::io::stdout()));
        let session = Arc::new(framing::Session::default());
        let input = tokio::spawn(framing::guard_input(
            tokio::io::BufReader::new(tokio::io::stdin()),
            guard_in,
            output.clone(),
            session.clone(),
        ));
        let forward = tokio::spawn(framing::forward_output(tokio::io::BufReader::new(server_out), output));
        Server::new(server_in, guard_out, socket).serve(service).await;
        // The server is gone: what it wrote is flushed, the editor's input is left.
        let _ = forward.await;
        input.abort();
        if session.shutdown.load(std::sync::atomic::Ordering::SeqCst) { ExitCode::SUCCESS } else { ExitCode::from(1) }
    })
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let offered = params.capabilities.general.and_then(|g| g.position_encodings).unwrap_or_default();
        let encoding = if offered.contains(&PositionEncodingKind::UTF8) { Encoding::Utf8 } else { Encoding::Utf16 };
        let _ = self.encoding.set(encoding);
        let mut commands = Vec::new();
        if std::env::var_os("SOVEREIGN_LSP_TEST_PANIC").is_some_and(|v| v == "1") {
            commands.push(PANIC_COMMAND.to_owned());
        }
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                position_encoding: Some(if encoding == Encoding::Utf8 {
                    PositionEncodingKind::UTF8
                } else {
                    PositionEncodingKind::UTF16
                }),
                text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
                    open_close: Some(true),
                    change: Some(TextDocumentSyncKind::INCREMENTAL),
                    save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                    ..TextDocumentSyncOptions::default()
                })),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(vec!["\"".to_owned(), "=".to_owned(), " ".to_owned()]),
                    ..CompletionOptions::default()
                }),
                definition_provider: Some(OneOf::Left(true)),
                references_provider: Some(OneOf::Left(true)),
                rename_provider: Some(OneOf::Right(RenameOptions {
                    prepare_provider: Some(true),
                    work_done_progress_options: WorkDoneProgressOptions::default(),
                })),
                document_symbol_provider: Some(OneOf::Left(true)),
                document_formatting_provider: Some(OneOf::Left(true)),
                code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
                execute_command_provider: (!commands.is_empty())
                    .then(|| ExecuteCommandOptions { commands, ..ExecuteCommandOptions::default() }),
                ..ServerCapabilities::default()
            },
            server_info: Some(ServerInfo {
                name: "sovereign".to_owned(),
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            }),
            ..InitializeResult::default()
        })
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        handlers::documents::did_open(self, params).await
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        handlers::documents::did_change(self, params).await
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        handlers::documents::did_save(self, params).await
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        handlers::documents::did_close(self, params).await
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        handlers::hover::hover(self, params).await
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        handlers::completion::completion(self, params).await
    }

    async fn goto_definition(&self, params: GotoDefinitionParams) -> Result<Option<GotoDefinitionResponse>> {
        handlers::navigation::goto_definition(self, params).await
    }

    async fn references(&self, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
        handlers::navigation::references(self, params).await
    }

    async fn prepare_rename(&self, params: TextDocumentPositionParams) -> Result<Option<PrepareRenameResponse>> {
        handlers::rename::prepare_rename(self, params).await
    }

    async fn rename(&self, params: RenameParams) -> Result<Option<WorkspaceEdit>> {
        handlers::rename::rename(self, params).await
    }

    async fn document_symbol(&self, params: DocumentSymbolParams) -> Result<Option<DocumentSymbolResponse>> {
        handlers::symbols::document_symbol(self, params).await
    }

    async fn formatting(&self, params: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
        handlers::formatting::formatting(self, params).await
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        handlers::code_action::code_action(self, params).await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        let enabled = std::env::var_os("SOVEREIGN_LSP_TEST_PANIC").is_some_and(|v| v == "1");
        self.answer("command", || {
            if enabled && params.command == PANIC_COMMAND {
                panic!("a test panic, as asked");
            }
            None
        })
        .await
    }
}
