"""`sovereign lsp` end to end: a real client library (pytest-lsp) drives the
real binary over stdio."""

import asyncio
import pathlib

from lsprotocol import types
from pytest_lsp import LanguageClient

SPEC = """fabric "lab" {
    residency "eu"
}
site "bench" tier="server" region="eu-central" {
    cluster kind="k3s" context="lab"
    node "gpu-01" gpu="h100-80gb" gpus=1 mig=#true
}
model "llama-8b" base="llama-3.1-8b-instruct" dtype="bf16"
serve "chat" model="llama-8b" site="bench" {
    mig "3g.40gb"
    max-model-len 8192
}
"""


def position_of(text: str, needle: str, delta: int = 0) -> types.Position:
    offset = text.index(needle) + delta
    line = text.count("\n", 0, offset)
    character = offset - (text.rfind("\n", 0, offset) + 1)
    return types.Position(line=line, character=character)


async def open_doc(client: LanguageClient, path: pathlib.Path, text: str, version: int = 1) -> str:
    path.write_text(text)
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="kdl", version=version, text=text)
        )
    )
    await wait_for_diagnostics(client, uri)
    return uri


async def wait_for_diagnostics(client: LanguageClient, uri: str, timeout: float = 10.0, until=lambda ds: True):
    """Waits until diagnostics for `uri` arrive (published after each check)
    and satisfy `until`. Polls rather than waits for a notification: on
    Python 3.11 a notification handled before the waiter is registered
    wakes nobody, and the wait would time out although it arrived."""
    deadline = asyncio.get_running_loop().time() + timeout
    while uri not in client.diagnostics or not until(client.diagnostics[uri]):
        assert asyncio.get_running_loop().time() < deadline, f"{uri}: {client.diagnostics.get(uri)}"
        await asyncio.sleep(0.01)


async def change(client: LanguageClient, uri: str, text: str, version: int):
    client.diagnostics.pop(uri, None)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    await wait_for_diagnostics(client, uri)


async def test_initialize_announces_the_features(client: LanguageClient):
    # The session fixture initialized; the server answers requests.
    assert client.capabilities is not None


async def test_diagnostics_on_open_and_change(client: LanguageClient, tmp_path):
    uri = await open_doc(client, tmp_path / "fabric.kdl", SPEC)
    assert list(client.diagnostics[uri]) == []
    broken = SPEC.replace('tier="server"', 'tier="serer"')
    await change(client, uri, broken, 2)
    diagnostics = client.diagnostics[uri]
    assert [d.code for d in diagnostics] == ["SOV2005"]
    assert diagnostics[0].range.start == position_of(broken, '"serer"')
    assert "server" in diagnostics[0].message
    # Capacity: three 3g.40gb replicas do not fit one H100.
    crowded = SPEC.replace('mig "3g.40gb"', 'mig "3g.40gb"\n    replicas 3')
    await change(client, uri, crowded, 3)
    assert [d.code for d in client.diagnostics[uri]] == ["SOV4001"]
    related = client.diagnostics[uri][0].related_information
    assert related and any("gpu-01" in r.message for r in related)


async def test_errors_in_imported_files_are_reported_on_those_files(client: LanguageClient, tmp_path):
    (tmp_path / "models.kdl").write_text('model "m" base="llama-3.1-8b-instrct"\n')
    root = 'fabric "f" { residency "eu"; }\nimport "models.kdl"\n'
    await open_doc(client, tmp_path / "fabric.kdl", root)
    imported = (tmp_path / "models.kdl").as_uri()
    await wait_for_diagnostics(client, imported)
    assert [d.code for d in client.diagnostics[imported]] == ["SOV2018"]


async def test_hover_shows_schema_docs_and_placements(client: LanguageClient, tmp_path):
    uri = await open_doc(client, tmp_path / "fabric.kdl", SPEC)
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(SPEC, "site ", 1))
    )
    assert hover is not None and "A place where workloads run" in hover.contents.value
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(SPEC, "max-model-len", 2))
    )
    assert hover is not None and "longest sequence" in hover.contents.value
    # On a declared serve: where it runs and how much memory is left.
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(SPEC, '"chat"', 2))
    )
    assert hover is not None
    assert "bench/gpu-01" in hover.contents.value and "3g.40gb" in hover.contents.value
    assert "free after weights" in hover.contents.value


async def test_completion(client: LanguageClient, tmp_path):
    text = SPEC + 'serve "other" model="" {\n    \n}\n'
    uri = await open_doc(client, tmp_path / "fabric.kdl", text)

    async def labels(needle, delta):
        result = await client.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(text, needle, delta)
            )
        )
        items = result.items if hasattr(result, "items") else result
        return [i.label for i in items]

    # Names of declared models where a model is needed.
    assert await labels('model=""', 7) == ["llama-8b"]
    # Kinds valid inside a serve.
    inside = await labels('{\n    \n}', 6)
    assert "replicas" in inside and "mig" in inside and "site" not in inside
    # Properties of the current node.
    assert "tier" in await labels('serve "other" ', 14)
    # Allowed values.
    assert await labels('tier="server"', 6) == ["cloud", "server", "device"]


async def test_definition_references_and_rename(client: LanguageClient, tmp_path):
    uri = await open_doc(client, tmp_path / "fabric.kdl", SPEC)
    at_reference = position_of(SPEC, 'model="llama-8b"', 8)
    definition = await client.text_document_definition_async(
        types.DefinitionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=at_reference)
    )
    assert definition.range.start == position_of(SPEC, '"llama-8b" base')
    references = await client.text_document_references_async(
        types.ReferenceParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=at_reference,
            context=types.ReferenceContext(include_declaration=True),
        )
    )
    assert len(references) == 2
    edit = await client.text_document_rename_async(
        types.RenameParams(text_document=types.TextDocumentIdentifier(uri=uri), position=at_reference, new_name="llama-small")
    )
    edits = edit.changes[uri]
    assert sorted(e.new_text for e in edits) == ['"llama-small"', '"llama-small"']
    # A name that cannot be a Kubernetes name is refused.
    try:
        await client.text_document_rename_async(
            types.RenameParams(text_document=types.TextDocumentIdentifier(uri=uri), position=at_reference, new_name="Bad Name")
        )
        raise AssertionError("an invalid name was accepted")
    except Exception as error:  # the server answers with an error
        assert "not a valid name" in str(error)


async def test_document_symbols(client: LanguageClient, tmp_path):
    uri = await open_doc(client, tmp_path / "fabric.kdl", SPEC)
    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    names = [s.name for s in symbols]
    assert names == ["lab", "bench", "llama-8b", "chat"]
    assert [c.name for c in symbols[1].children] == ["gpu-01"]


async def test_formatting(client: LanguageClient, tmp_path):
    messy = 'fabric "f"{residency "eu"}\n\n\n// note\n'
    uri = await open_doc(client, tmp_path / "fabric.kdl", messy)
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            options=types.FormattingOptions(tab_size=4, insert_spaces=True),
        )
    )
    assert len(edits) == 1
    assert edits[0].new_text == 'fabric "f" {\n    residency "eu"\n}\n\n// note\n'


async def test_code_action_applies_did_you_mean(client: LanguageClient, tmp_path):
    text = SPEC.replace('tier="server"', 'tier="serer"')
    uri = await open_doc(client, tmp_path / "fabric.kdl", text)
    diagnostic = client.diagnostics[uri][0]
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=diagnostic.range,
            context=types.CodeActionContext(diagnostics=[diagnostic]),
        )
    )
    assert actions and actions[0].edit.changes[uri][0].new_text == '"server"'


async def test_broken_input_never_kills_the_server(client: LanguageClient, tmp_path):
    uri = await open_doc(client, tmp_path / "fabric.kdl", SPEC)
    # Garbage, unbalanced braces, invalid escapes, control characters.
    for version, text in enumerate(['{{{ "\\q', "\u0000\u202e}}}", 'serve "x" model=', "/-", SPEC[:37]], start=2):
        await change(client, uri, text, version)
        # Hover and completion still answer on a broken spec, even out of range.
        for position in [types.Position(line=0, character=3), types.Position(line=999, character=999)]:
            await client.text_document_hover_async(
                types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position)
            )
            await client.text_document_completion_async(
                types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position)
            )
    # A request that panics is answered with an error, and the server keeps going.
    try:
        await client.workspace_execute_command_async(types.ExecuteCommandParams(command="sovereign.test.panic"))
        raise AssertionError("the panicking request did not fail")
    except Exception as error:
        assert "panic" in str(error)
    await change(client, uri, SPEC, 99)
    assert list(client.diagnostics[uri]) == []
    assert any("panic" in m.message for m in client.log_messages)


async def test_rename_across_files(client: LanguageClient, tmp_path):
    (tmp_path / "models.kdl").write_text('model "small" base="llama-3.2-1b-instruct"\n')
    root = SPEC.replace('model "llama-8b" base="llama-3.1-8b-instruct" dtype="bf16"\n', 'import "models.kdl"\n')
    root = root.replace('model="llama-8b"', 'model="small"')
    uri = await open_doc(client, tmp_path / "fabric.kdl", root)
    assert list(client.diagnostics[uri]) == []
    edit = await client.text_document_rename_async(
        types.RenameParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position_of(root, 'model="small"', 8),
            new_name="tiny",
        )
    )
    models = (tmp_path / "models.kdl").as_uri()
    assert [e.new_text for e in edit.changes[uri]] == ['"tiny"']
    assert [e.new_text for e in edit.changes[models]] == ['"tiny"']
    # Go to definition lands in the other file.
    definition = await client.text_document_definition_async(
        types.DefinitionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(root, 'model="small"', 8))
    )
    assert definition.uri == models


async def test_a_file_dropped_from_the_imports_is_checked_on_its_own(client: LanguageClient, tmp_path):
    models_text = 'model "m" base="llama-3.1-8b-instruct"\n'
    root_text = 'fabric "f" { residency "eu"; }\nimport "models.kdl"\n'
    root = await open_doc(client, tmp_path / "fabric.kdl", root_text)
    models = await open_doc(client, tmp_path / "models.kdl", models_text)
    assert list(client.diagnostics[models]) == []
    # Drop the import: models.kdl is now a spec of its own, without a fabric.
    client.diagnostics.pop(models, None)
    await change(client, root, 'fabric "f" { residency "eu"; }\n', 2)
    await wait_for_diagnostics(client, models, until=lambda ds: [d.code for d in ds] == ["SOV3009"])


async def test_renaming_a_namespace_renames_runs_on(client: LanguageClient, tmp_path):
    text = SPEC + (
        'dataset "golden" classification="internal"\n'
        'temporal "flows" site="bench" {\n    namespace "evals"\n}\n'
        'eval "nightly" target="chat" dataset="golden" {\n    runs-on "flows" namespace="evals"\n}\n'
    )
    uri = await open_doc(client, tmp_path / "fabric.kdl", text)
    assert list(client.diagnostics[uri]) == []
    edit = await client.text_document_rename_async(
        types.RenameParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position_of(text, 'namespace "evals"', 12),
            new_name="gates",
        )
    )
    assert sorted(e.new_text for e in edit.changes[uri]) == ['"gates"', '"gates"']


async def test_random_edits_of_the_examples_never_kill_the_server(client: LanguageClient, tmp_path):
    """Deleted lines, truncations and inserted junk in the real examples, each
    followed by requests at random positions: every request gets an answer."""
    import random

    rng = random.Random(7)
    root = pathlib.Path(__file__).resolve().parents[2] / "examples"
    texts = [p.read_text() for p in sorted(root.glob("*/fabric.kdl"))]
    uri = await open_doc(client, tmp_path / "fabric.kdl", texts[0])
    version = 1
    junk = ['"', "{", "}", "/-", "/*", "\\", "=", "#", "\u202e", "é", ";", "\n", " replicas 99", ' site="nowhere"']
    for _ in range(40):
        text = rng.choice(texts)
        lines = text.split("\n")
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(["delete", "insert", "truncate"])
            if kind == "delete" and len(lines) > 1:
                del lines[rng.randrange(len(lines))]
            elif kind == "insert":
                lines = lines or [""]
                i = rng.randrange(len(lines))
                cut = rng.randint(0, len(lines[i]))
                lines[i] = lines[i][:cut] + rng.choice(junk) + lines[i][cut:]
            else:
                lines = lines[: rng.randint(0, len(lines))]
        version += 1
        edited = "\n".join(lines)
        await change(client, uri, edited, version)
        for _ in range(3):
            position = types.Position(line=rng.randint(0, len(lines) + 2), character=rng.randint(0, 80))
            identifier = types.TextDocumentIdentifier(uri=uri)
            await client.text_document_hover_async(types.HoverParams(text_document=identifier, position=position))
            await client.text_document_completion_async(types.CompletionParams(text_document=identifier, position=position))
            await client.text_document_definition_async(types.DefinitionParams(text_document=identifier, position=position))
        await client.text_document_formatting_async(
            types.DocumentFormattingParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                options=types.FormattingOptions(tab_size=4, insert_spaces=True),
            )
        )
    assert not [m for m in client.log_messages if "failed" in m.message]
