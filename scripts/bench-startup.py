#!/usr/bin/env python3
"""What self-tracing costs at startup, in one invocation (the machine is
shared and noisy: compare the ratios of one run, interleaved):

- `explain SOV2001` (a command that does almost nothing) and `check
  examples/lab`, each with nothing set (no subscriber, no exporter, no
  thread), with OTEL_SDK_DISABLED=true beside an endpoint, and exporting to
  a real OTLP/HTTP receiver on loopback (tests/telemetry/otlp_receiver.py).

Medians of 40 runs each, release build. Needs python3 opentelemetry-proto.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "sovereign")
RUNS = 40


def main():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "sovereign"], cwd=ROOT, check=True)
    out = tempfile.mkdtemp()
    receiver = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tests/telemetry/otlp_receiver.py"), os.path.join(out, "spans.jsonl")],
        stdout=subprocess.PIPE,
        text=True,
    )
    port = int(receiver.stdout.readline())
    endpoint = f"http://127.0.0.1:{port}"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LOGFIRE_", "RUST_LOG"))}
    modes = {
        "nothing set": {},
        "OTEL_SDK_DISABLED=true": {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SDK_DISABLED": "true"},
        "exporting (OTLP/HTTP)": {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint},
    }
    commands = {"explain SOV2001": ["explain", "SOV2001"], "check examples/lab": ["check", "examples/lab"]}
    times = {(c, m): [] for c in commands for m in modes}
    for _ in range(RUNS):
        for c, args in commands.items():
            for m, env in modes.items():
                start = time.perf_counter()
                subprocess.run([BIN, *args], cwd=ROOT, env={**base, **env}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=True)
                times[(c, m)].append(time.perf_counter() - start)
    receiver.kill()
    print("| command | mode | median | ÷ nothing set |")
    print("| --- | --- | --- | --- |")
    for c in commands:
        none = statistics.median(times[(c, "nothing set")])
        for m in modes:
            median = statistics.median(times[(c, m)])
            print(f"| `{c}` | {m} | {median * 1000:.2f} ms | {median / none:.2f}× |")


if __name__ == "__main__":
    main()
