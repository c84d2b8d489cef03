#!/usr/bin/env python3
"""Speed cliffs found by the adversarial review, end to end, in one run.

Generates each hostile spec, runs the release binary on it (best of 3),
and prints wall time and peak RSS, beside the figure the review measured.
Usage: scripts/bench-hostile.py [--against OTHER_BINARY]   (builds the release binary first)
With --against, each case also runs OTHER_BINARY (say, a release build of an
earlier commit), alternating with this one, and prints the ratio: on a
shared machine only ratios from one run compare.
"""
import os, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "sovereign")

HEAD = 'fabric "b" { residency "eu"; }\nmodel "m" base="llama-3.2-1b-instruct"\n'


def many_serves_many_nodes(serves=30000, nodes=4286):
    out = [HEAD, 'site "fra" tier="server" region="eu-central" {\n    cluster kind="k3s" context="fra"\n']
    out += [f'    node "n{i}" gpu="h100-80gb" gpus=8 mig=#true\n' for i in range(nodes)]
    out.append("}\n")
    out += [f'serve "s{i}" model="m" site="fra" {{ mig "1g.10gb"; max-model-len 4096; }}\n' for i in range(serves)]
    return "".join(out)


def serves_by_tier(n=8000):
    out = [HEAD]
    for i in range(n):
        out.append(f'site "site{i}" tier="server" region="eu-central" {{\n    cluster kind="k3s" context="c{i}"\n'
                   f'    node "n" gpu="h100-80gb" gpus=1\n}}\n')
    out += [f'serve "s{i}" model="m" tier="server" {{ max-model-len 4096; }}\n' for i in range(n)]
    return "".join(out)


def long_cycle(n=14000):
    out = [HEAD]
    out += [f'dataset "d{i}" classification="public" {{ depends-on "d{(i + 1) % n}"; }}\n' for i in range(n)]
    return "".join(out).replace('classification="public" {', 'classification="public" {', 1)


def failing_serves(n=10000):
    out = [HEAD, 'site "fra" tier="server" region="eu-central" {\n    cluster kind="k3s" context="fra"\n'
                 '    node "n" gpu="h100-80gb" gpus=1\n}\n']
    out += [f'serve "s{i}" model="m" site="fra" {{ gpus 1; max-model-len 4096; }}\n' for i in range(n)]
    return "".join(out)


def unknown_properties(n):
    return "".join([HEAD] + [f'dataset "d{i}" classification="public" bogus{i % 7}=1\n' for i in range(n)])


def run(args, path, binaries, repeat=3):
    """Best wall time and peak RSS of each binary, runs alternating."""
    best = [None] * len(binaries)
    for _ in range(repeat):
        for i, binary in enumerate(binaries):
            start = time.perf_counter()
            subprocess.run([binary, *args, path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elapsed = time.perf_counter() - start
            best[i] = elapsed if best[i] is None else min(best[i], elapsed)
    rss = []
    for binary in binaries:
        out = subprocess.run(["/usr/bin/time", "-f", "%M", binary, *args, path],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        rss.append(int(out.stderr.strip().splitlines()[-1]))
    return best, rss


def row(name, before, best, rss):
    cells = [name, before, f"{best[0] * 1000:.0f} ms", f"{rss[0] / 1024:.0f} MB"]
    if len(best) > 1:
        cells += [f"{best[1] * 1000:.0f} ms", f"{rss[1] / 1024:.0f} MB",
                  f"{best[0] / best[1]:.2f}", f"{rss[0] / rss[1]:.2f}"]
    print("| " + " | ".join(cells) + " |")


def main():
    binaries = [BIN]
    if "--against" in sys.argv:
        binaries.append(sys.argv[sys.argv.index("--against") + 1])
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "sovereign"], cwd=ROOT, check=True)
    cases = [
        ("30,000 serves on 4,286 MIG nodes", many_serves_many_nodes, ["check"], "3.4 s"),
        ("8,000 serves by tier= over 8,000 sites", serves_by_tier, ["check"], "3.1 s, 540 MB"),
        ("one 14,000-edge dependency cycle", long_cycle, ["check"], "4 s"),
        ("10,000 serves that do not fit", failing_serves, ["check"], "2.8 s"),
    ]
    for n in (10000, 40000):
        for fmt in ("human", "json", "sarif", "github"):
            cases.append((f"{n:,} diagnostics, --format {fmt}", lambda n=n: unknown_properties(n),
                          ["check", "--color", "never", "--format", fmt], "0.34 s / 3.8 s (json, 2.5k / 10k)"))
    hexdigits = "0x" + "f" * 120000
    with tempfile.TemporaryDirectory() as d:
        header = ["case", "before (review)", "best wall time", "peak RSS"]
        if len(binaries) > 1:
            header += ["other: time", "other: RSS", "time ratio", "RSS ratio"]
        print("| " + " | ".join(header) + " |")
        print("|" + " --- |" * len(header))
        for name, make, args, before in cases:
            path = os.path.join(d, "spec.kdl")
            with open(path, "w") as f:
                f.write(make())
            best, rss = run(args, path, binaries)
            row(name, before, best, rss)
        path = os.path.join(d, "hex.kdl")
        with open(path, "w") as f:
            f.write(f'fabric   "b"\nmodel "m" base="llama-3.2-1b-instruct" x={hexdigits}\n')
        best, rss = run(["fmt", "--check"], path, binaries)
        row("fmt of a 120,000-digit hex literal", "3.4 s", best, rss)


if __name__ == "__main__":
    main()
