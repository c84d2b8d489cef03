"""The real `sovereign lsp` binary, driven over stdio by pytest-lsp."""

import os
import pathlib

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("SOVEREIGN_BIN", str(ROOT / "target" / "debug" / "sovereign"))


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[BINARY, "lsp"],
        server_env={**os.environ, "SOVEREIGN_LSP_TEST_PANIC": "1"},
    ),
)
async def client(lsp_client: LanguageClient, tmp_path):
    params = types.InitializeParams(
        capabilities=types.ClientCapabilities(
            general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]),
        ),
        root_uri=tmp_path.as_uri(),
    )
    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()
