#!/usr/bin/env python3
"""Latency of `sovereign lsp` re-checks: a scripted client opens a
5,000-line spec, then sends edits one at a time (each one keystroke: a digit
of a `replicas` value) and measures the time from sending `didChange` to
receiving the `publishDiagnostics` of that version. Prints p50, p95 and max.

Usage: scripts/bench-lsp.py [path/to/sovereign] [edits]
"""

import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BINARY = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target" / "release" / "sovereign")
EDITS = int(sys.argv[2]) if len(sys.argv) > 2 else 300


def spec_of_lines(lines: int) -> str:
    gen = ROOT / "target" / "release" / "fabric-gen"
    text = subprocess.run([str(gen), "1"], capture_output=True, text=True, check=True).stdout
    n = 1
    while text.count("\n") < lines:
        n = int(n * lines / max(text.count("\n"), 1)) + 8
        text = subprocess.run([str(gen), str(n)], capture_output=True, text=True, check=True).stdout
    return text


class Client:
    def __init__(self):
        self.proc = subprocess.Popen([BINARY, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.next_id = 0

    def send(self, message):
        body = json.dumps(message).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            message = self.read()
            if message.get("id") == self.next_id:
                return message

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def read(self):
        length = 0
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise EOFError("the server exited")
            if line in (b"\r\n", b"\n"):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return json.loads(self.proc.stdout.read(length))

    def wait_diagnostics(self, uri, version):
        while True:
            message = self.read()
            if message.get("method") == "textDocument/publishDiagnostics":
                params = message["params"]
                if params["uri"] == uri and params.get("version") == version:
                    return params["diagnostics"]


def main():
    text = spec_of_lines(5000)
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp, "fabric.kdl").resolve()
        path.write_text(text)
        uri = path.as_uri()
        client = Client()
        client.request("initialize", {"processId": None, "rootUri": pathlib.Path(tmp).resolve().as_uri(), "capabilities": {}})
        client.notify("initialized", {})
        client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "kdl", "version": 1, "text": text}})
        assert client.wait_diagnostics(uri, 1) == [], "the benchmark spec must check clean"
        # The line and column of the first `replicas 2`: each edit retypes its digit.
        offset = text.index("replicas 2") + len("replicas ")
        line = text.count("\n", 0, offset)
        column = offset - (text.rfind("\n", 0, offset) + 1)
        latencies = []
        for i in range(EDITS):
            version = i + 2
            digit = str(1 + i % 2)
            change = {"range": {"start": {"line": line, "character": column}, "end": {"line": line, "character": column + 1}}, "text": digit}
            start = time.perf_counter()
            client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]})
            client.wait_diagnostics(uri, version)
            latencies.append((time.perf_counter() - start) * 1000)
        client.request("shutdown", None)
        client.notify("exit", None)
        client.proc.wait(timeout=10)
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    print(f"{text.count(chr(10))} lines, {len(text)} bytes, {EDITS} edits")
    print(f"p50 {statistics.median(latencies):.2f} ms, p95 {p95:.2f} ms, max {latencies[-1]:.2f} ms")


if __name__ == "__main__":
    main()
