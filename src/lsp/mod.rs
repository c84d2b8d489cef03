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

mod convert;
mod features;
mod framing;
mod workspace;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use sovereign_check::Stdlib;
use sovereign_diagnostics::{FileId, Span};
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

use self::convert::{Encoding, LineIndex, diagnostic, location, path_of, uri_of};
use self::features::{CompletionKind, Context};
use self::workspace::{Document, Snapshot, Workspace};
use crate::host::DiskHost;
use sovereign_check::Host as _;

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

/// What never changes while the server runs.
struct Shared {
    stdlib: Stdlib,
}

struct Backend {
    client: Client,
    shared: Arc<Shared>,
    workspace: Arc<Mutex<Workspace>>,
    encoding: OnceLock<Encoding>,
}

/// The lock, even after a panic elsewhere poisoned it: its data stays consistent
/// because every update is a single insert or remove.
fn lock(workspace: &Mutex<Workspace>) -> MutexGuard<'_, Workspace> {
    workspace.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs a request body, turning a panic into an internal error.
fn guarded<T>(what: &str, body: impl FnOnce() -> T) -> std::result::Result<T, String> {
    std::panic::catch_unwind(AssertUnwindSafe(body)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        format!("{what} failed: {message}")
    })
}

impl Backend {
    fn encoding(&self) -> Encoding {
        self.encoding.get().copied().unwrap_or(Encoding::Utf16)
    }

    async fn answer<T>(&self, what: &str, body: impl FnOnce() -> Option<T>) -> Result<Option<T>> {
        self.reply(guarded(what, body)).await
    }

    /// A request's outcome as the protocol's answer; a failure is logged too.
    async fn reply<T>(&self, outcome: std::result::Result<Option<T>, String>) -> Result<Option<T>> {
        match outcome {
            Ok(value) => Ok(value),
            Err(message) => {
                self.client.log_message(MessageType::ERROR, &message).await;
                let mut error = Error::internal_error();
                error.message = message.into();
                Err(error)
            }
        }
    }

    /// Like [`Backend::answer`], on a blocking thread: for work that grows
    /// with the buffer (formatting), so that it holds up no other request.
    async fn answer_blocking<T: Send + 'static>(
        &self,
        what: &'static str,
        body: impl FnOnce() -> Option<T> + Send + 'static,
    ) -> Result<Option<T>> {
        let outcome = tokio::task::spawn_blocking(move || guarded(what, body))
            .await
            .unwrap_or_else(|e| Err(format!("{what} failed: {e}")));
        self.reply(outcome).await
    }

    /// The buffer (or file) at `uri`, its canonical path, and the snapshot that covers it.
    fn lookup(&self, uri: &Uri) -> Option<(PathBuf, Arc<String>, Option<Arc<Snapshot>>)> {
        let path = DiskHost.canonical(&path_of(uri)?);
        let workspace = lock(&self.workspace);
        let text = match workspace.documents.get(&path) {
            Some(doc) => doc.text.clone(),
            // Through the host: a FIFO or device is refused, never read (it could block forever).
            None => Arc::new(String::from_utf8(DiskHost.read(&path).ok()?).ok()?),
        };
        let snapshot = workspace.snapshot_for(&path);
        Some((path, text, snapshot))
    }

    /// Whether every open buffer the snapshot read still has the text it read.
    fn is_current(&self, snapshot: &Snapshot) -> bool {
        let workspace = lock(&self.workspace);
        snapshot
            .files
            .iter()
            .all(|(id, path)| workspace.documents.get(path).is_none_or(|doc| *doc.text == snapshot.sources.text(*id)))
    }

    fn checker(&self) -> Checker {
        Checker {
            shared: self.shared.clone(),
            workspace: self.workspace.clone(),
            client: self.client.clone(),
            encoding: self.encoding(),
        }
    }

    /// Re-checks the root of `path` in the background and publishes the diagnostics.
    fn schedule_check(&self, path: PathBuf) {
        self.checker().schedule(path);
    }
}

/// Runs checks in the background: at most one per root at a time; an edit
/// during a check marks the root dirty and the check runs again when it
/// ends, so the last text is always checked and checks never pile up.
#[derive(Clone)]
struct Checker {
    shared: Arc<Shared>,
    workspace: Arc<Mutex<Workspace>>,
    client: Client,
    encoding: Encoding,
}

impl Checker {
    fn schedule(&self, path: PathBuf) {
        let key = {
            let mut ws = lock(&self.workspace);
            let key = ws.roots.get(&path).cloned().unwrap_or_else(|| path.clone());
            if !ws.running.insert(key.clone()) {
                ws.dirty.insert(key);
                return;
            }
            key
        };
        let checker = self.clone();
        tokio::spawn(async move { checker.run(key, path).await });
    }

    async fn run(self, key: PathBuf, path: PathBuf) {
        loop {
            let (root_known, host, sequence) = {
                let mut ws = lock(&self.workspace);
                ws.dirty.remove(&key);
                ws.sequence += 1;
                (ws.roots.get(&path).cloned(), ws.overlay(), ws.sequence)
            };
            let shared = self.shared.clone();
            let task_path = path.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                guarded("checking", || {
                    let root = root_known.unwrap_or_else(|| workspace::find_root(&task_path, &host, &shared.stdlib));
                    let snapshot = workspace::check(&root, &host, &shared.stdlib);
                    (root, snapshot, host.versions)
                })
            })
            .await;
            let (publish, orphans, again) = match outcome {
                Ok(Ok((root, snapshot, versions))) => self.apply(&key, &path, root, snapshot, &versions, sequence),
                Ok(Err(message)) => {
                    self.client.log_message(MessageType::ERROR, message).await;
                    (Vec::new(), Vec::new(), self.finish(&key))
                }
                Err(error) => {
                    self.client.log_message(MessageType::ERROR, format!("checking failed: {error}")).await;
                    (Vec::new(), Vec::new(), self.finish(&key))
                }
            };
            for (file, diagnostics, version) in publish {
                if let Some(uri) = uri_of(&file) {
                    self.client.publish_diagnostics(uri, diagnostics, version).await;
                }
            }
            // Buffers this root no longer imports find their root again.
            for orphan in orphans {
                self.schedule(orphan);
            }
            if !again {
                return;
            }
        }
    }

    /// Ends a run of `key`; whether it must run again because of an edit meanwhile.
    fn finish(&self, key: &Path) -> bool {
        let mut ws = lock(&self.workspace);
        let again = ws.dirty.remove(key);
        if !again {
            ws.running.remove(key);
        }
        again
    }

    /// Stores a snapshot and works out what to publish. A result older than
    /// one already applied to the same root (possible when a root is also
    /// checked through another buffer) is dropped.
    #[allow(clippy::type_complexity)]
    fn apply(
        &self,
        key: &Path,
        path: &Path,
        root: PathBuf,
        snapshot: Snapshot,
        versions: &BTreeMap<PathBuf, i32>,
        sequence: u64,
    ) -> (Vec<(PathBuf, Vec<Diagnostic>, Option<i32>)>, Vec<PathBuf>, bool) {
        let mut ws = lock(&self.workspace);
        let again = ws.dirty.remove(key);
        if !again {
            ws.running.remove(key);
        }
        if ws.applied.get(&root).is_some_and(|&applied| applied > sequence) {
            return (Vec::new(), Vec::new(), again);
        }
        ws.applied.insert(root.clone(), sequence);
        ws.roots.insert(path.to_path_buf(), root.clone());
        let snapshot = Arc::new(snapshot);
        ws.snapshots.insert(root.clone(), snapshot.clone());
        let loaded: BTreeSet<PathBuf> = snapshot.files.iter().map(|(_, p)| p.clone()).collect();
        let orphans: Vec<PathBuf> = ws
            .roots
            .iter()
            .filter(|(doc, r)| **r == root && !loaded.contains(*doc))
            .map(|(doc, _)| doc.clone())
            .collect();
        for orphan in &orphans {
            ws.roots.remove(orphan);
        }
        let mut by_file: HashMap<PathBuf, Vec<Diagnostic>> = loaded.iter().map(|f| (f.clone(), Vec::new())).collect();
        for d in &snapshot.diagnostics {
            if let Some(file) = snapshot.path_of(d.primary.span.file) {
                by_file.entry(file.to_path_buf()).or_default().push(diagnostic(&snapshot.sources, d, self.encoding));
            }
        }
        let before = ws.published.insert(root, loaded.clone()).unwrap_or_default();
        for gone in before.difference(&loaded) {
            // Orphans get their own check; clear the rest.
            if !orphans.contains(gone) {
                by_file.insert(gone.clone(), Vec::new());
            }
        }
        // Stamped with the versions the check read, not whatever came since.
        let publish = by_file
            .into_iter()
            .map(|(file, diagnostics)| {
                let version = versions.get(&file).copied();
                (file, diagnostics, version)
            })
            .collect();
        (publish, orphans, again)
    }
}

fn completion_kind(kind: CompletionKind) -> CompletionItemKind {
    match kind {
        CompletionKind::Node => CompletionItemKind::CLASS,
        CompletionKind::Property => CompletionItemKind::PROPERTY,
        CompletionKind::Value => CompletionItemKind::ENUM_MEMBER,
        CompletionKind::Reference => CompletionItemKind::REFERENCE,
    }
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
        let Some(path) = path_of(&params.text_document.uri).map(|p| DiskHost.canonical(&p)) else { return };
        lock(&self.workspace).documents.insert(
            path.clone(),
            Document { text: Arc::new(params.text_document.text), version: params.text_document.version },
        );
        self.schedule_check(path);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let Some(path) = path_of(&params.text_document.uri).map(|p| DiskHost.canonical(&p)) else { return };
        let encoding = self.encoding();
        let applied = guarded("applying an edit", || {
            let mut workspace = lock(&self.workspace);
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
            Ok(true) => self.schedule_check(path),
            Ok(false) => {
                let message = format!("ignored a change to {}, which was not opened", path.display());
                self.client.log_message(MessageType::WARNING, message).await;
            }
            Err(message) => self.client.log_message(MessageType::ERROR, message).await,
        }
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        if let Some(path) = path_of(&params.text_document.uri).map(|p| DiskHost.canonical(&p)) {
            self.schedule_check(path);
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        if let Some(path) = path_of(&params.text_document.uri).map(|p| DiskHost.canonical(&p)) {
            lock(&self.workspace).documents.remove(&path);
            // Other open files may import it: their view falls back to the disk.
            self.schedule_check(path);
        }
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let position = params.text_document_position_params;
        let Some((path, text, snapshot)) = self.lookup(&position.text_document.uri) else { return Ok(None) };
        let encoding = self.encoding();
        self.answer("hover", || {
            let offset = LineIndex::new(&text).offset(position.position, encoding);
            let context = features::context(&self.shared.stdlib.schema, &text, offset);
            let file = snapshot.as_deref().and_then(|s| s.file_of(&path));
            let markdown = features::hover(snapshot.as_deref(), &context, file, offset)?;
            Some(Hover {
                contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: markdown }),
                range: None,
            })
        })
        .await
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let position = params.text_document_position;
        let Some((_, text, snapshot)) = self.lookup(&position.text_document.uri) else { return Ok(None) };
        let encoding = self.encoding();
        self.answer("completion", || {
            // One index for the request, not one per item.
            let index = LineIndex::new(&text);
            let offset = index.offset(position.position, encoding);
            let context: Context<'_> = features::context(&self.shared.stdlib.schema, &text, offset);
            let items = features::completions(&self.shared.stdlib.schema, snapshot.as_deref(), &context)
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

    async fn goto_definition(&self, params: GotoDefinitionParams) -> Result<Option<GotoDefinitionResponse>> {
        let position = params.text_document_position_params;
        let Some((path, text, Some(snapshot))) = self.lookup(&position.text_document.uri) else { return Ok(None) };
        let encoding = self.encoding();
        self.answer("definition", || {
            let offset = LineIndex::new(&text).offset(position.position, encoding);
            let id = features::item_at(&snapshot, snapshot.file_of(&path)?, offset)?;
            let name = snapshot.fabric.item(id).name.as_ref()?;
            location(&snapshot.sources, name.span, encoding).map(GotoDefinitionResponse::Scalar)
        })
        .await
    }

    async fn references(&self, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let position = params.text_document_position;
        let Some((path, text, Some(snapshot))) = self.lookup(&position.text_document.uri) else { return Ok(None) };
        let encoding = self.encoding();
        self.answer("references", || {
            let offset = LineIndex::new(&text).offset(position.position, encoding);
            let id = features::item_at(&snapshot, snapshot.file_of(&path)?, offset)?;
            let spans = features::references(&snapshot, id, params.context.include_declaration);
            Some(spans.into_iter().filter_map(|s| location(&snapshot.sources, s, encoding)).collect())
        })
        .await
    }

    async fn prepare_rename(&self, params: TextDocumentPositionParams) -> Result<Option<PrepareRenameResponse>> {
        let Some((path, text, Some(snapshot))) = self.lookup(&params.text_document.uri) else { return Ok(None) };
        let encoding = self.encoding();
        self.answer("prepare rename", || {
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

    async fn rename(&self, params: RenameParams) -> Result<Option<WorkspaceEdit>> {
        let position = params.text_document_position;
        let Some((path, text, Some(snapshot))) = self.lookup(&position.text_document.uri) else { return Ok(None) };
        let encoding = self.encoding();
        if !self.is_current(&snapshot) {
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
                self.client.log_message(MessageType::ERROR, &message).await;
                Err(Error::internal_error())
            }
        }
    }

    async fn document_symbol(&self, params: DocumentSymbolParams) -> Result<Option<DocumentSymbolResponse>> {
        let Some((path, _, Some(snapshot))) = self.lookup(&params.text_document.uri) else { return Ok(None) };
        let encoding = self.encoding();
        self.answer("document symbols", || {
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

    async fn formatting(&self, params: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
        let Some((_, text, _)) = self.lookup(&params.text_document.uri) else { return Ok(None) };
        let encoding = self.encoding();
        self.answer_blocking("formatting", move || {
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

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let Some((path, text, Some(snapshot))) = self.lookup(&params.text_document.uri) else { return Ok(None) };
        let encoding = self.encoding();
        let uri = params.text_document.uri.clone();
        let current = self.is_current(&snapshot);
        self.answer("code actions", || {
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
