#!/usr/bin/env python3
"""The `sovereign build` benchmark: its budgets and the peers, in one invocation.

    python3 scripts/bench-build.py [--runs 5] [--peer-runs 1] [--no-peers] [--bin target/release/sovereign]

Builds (release, output on /dev/shm when it exists; removed afterwards) of:
  - `fabric-gen 10000` and `fabric-gen 100000`: budgets <= 300 ms and <= 3 s, peak RSS <= 30x the input;
  - `fabric-gen serves 10000`: 10,000 one-replica vLLM serves, against KCL and Jsonnet writing the
    same kind of objects (../shared/peers/: Deployment + Service + NetworkPolicy per service), where
    sovereign must be >= 10x faster than each and use <= 1/5 of their memory.
Runs alternate between inputs so that the machine's noise spreads over all of them; the table gives
best and median wall time and the peak RSS (max over runs, from wait4). Compare ratios from one run.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "..", "shared", "peers")


def run(cmd, stdout=subprocess.DEVNULL):
    """Wall seconds and peak RSS in bytes of one run of cmd (which must succeed)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-2000:]}")
    return wall, usage.ru_maxrss * 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--peer-runs", type=int, default=1)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "sovereign"))
    parser.add_argument("--gen", default=os.path.join(ROOT, "target", "release", "fabric-gen"))
    args = parser.parse_args()
    if not (os.path.exists(args.bin) and os.path.exists(args.gen)):
        subprocess.run(["cargo", "build", "--release", "-p", "sovereign", "-p", "fabric-gen"], cwd=ROOT, check=True)
    # Specs on disk (sovereign refuses to read specs under /dev), output in memory where it can be.
    scratch = tempfile.mkdtemp()
    out_dir = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    inputs = [("fabric-gen 10000", ["10000"], 0.3), ("fabric-gen 100000", ["100000"], 3.0),
              ("fabric-gen serves 10000", ["serves", "10000"], None)]
    specs = {}
    for name, gen_args, _ in inputs:
        path = os.path.join(scratch, name.replace(" ", "-") + ".kdl")
        with open(path, "w") as out:
            subprocess.run([args.gen, *gen_args], stdout=out, check=True)
        specs[name] = path
    results = {name: [] for name, _, _ in inputs}
    for _ in range(args.runs):
        for name, _, _ in inputs:
            out = os.path.join(out_dir, "out-" + name.replace(" ", "-"))
            results[name].append(run([args.bin, "build", specs[name], "-o", out, "--partial", "--force"]))
    print(f"sovereign build, {args.runs} runs each, alternating; {os.cpu_count()} cores\n")
    print("| input | input size | best | median | peak RSS | RSS / input | budget |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, _, budget in inputs:
        walls = [w for w, _ in results[name]]
        peak = max(r for _, r in results[name])
        size = os.path.getsize(specs[name])
        verdict = "" if budget is None else (f"<= {budget:g} s: " + ("met" if min(walls) <= budget else "NOT met"))
        print(f"| {name} | {size / 1e6:.1f} MB | {min(walls):.3f} s | {statistics.median(walls):.3f} s "
              f"| {peak / 2**20:.0f} MiB | {peak / size:.1f}x | {verdict} |")
    subprocess.run(["rm", "-rf", scratch, out_dir], check=False)
    if args.no_peers:
        return
    try:
        import kcl_lib, _jsonnet, _gojsonnet  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "kcl-lib==0.13.2", "jsonnet==0.22.0",
                        "gojsonnet==0.22.0", "pyyaml"], check=True)
    ours = results["fabric-gen serves 10000"]
    our_wall, our_peak = statistics.median(w for w, _ in ours), max(r for _, r in ours)
    print(f"\n10,000 services against the peers ({args.peer_runs} run(s) each, same invocation)\n")
    print("| tool | median | peak RSS | sovereign faster by | sovereign's memory share |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| sovereign build | {our_wall:.2f} s | {our_peak / 2**20:.0f} MiB | — | — |")
    for tool in ["kcl", "jsonnet-cpp", "jsonnet-go"]:
        runs = [run([sys.executable, os.path.join(PEERS, "drive.py"), tool, "10000"]) for _ in range(args.peer_runs)]
        wall, peak = statistics.median(w for w, _ in runs), max(r for _, r in runs)
        print(f"| {tool} | {wall:.2f} s | {peak / 2**20:.0f} MiB | {wall / our_wall:.1f}x | {our_peak / peak:.2f} |")


if __name__ == "__main__":
    main()
