"""Checks Helm values against the upstream chart: its values.schema.json where it has one (validated,
as Helm does, after merging the values over the chart's defaults), else the keys of its values.yaml.

    python3 validate_values.py CHART_DIR VALUES.json...

Without a schema, every key path of the values must exist in values.yaml, except below an "opaque" key
whose value the chart passes through whole (a Kubernetes securityContext, a raw server config), given
as OPAQUE=a.b,c in the environment, and documented keys the chart's values.yaml only shows in a comment
(DOCUMENTED=apiKey). REMOVED=a.b,c lists paths that must not appear (keys a chart release dropped).
"""
import json
import os
import sys

import jsonschema
import yaml


def paths(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            yield from paths(item, path)


def merge(defaults, values):
    """Helm's coalescing: maps merge, a null removes the default, anything else replaces it."""
    if not (isinstance(defaults, dict) and isinstance(values, dict)):
        return values
    out = dict(defaults)
    for key, value in values.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(defaults.get(key), value)
    return out


def main():
    chart = sys.argv[1]
    schema_path = os.path.join(chart, "values.schema.json")
    schema = json.load(open(schema_path)) if os.path.exists(schema_path) else None
    defaults = yaml.safe_load(open(os.path.join(chart, "values.yaml")))
    opaque = [p for p in os.environ.get("OPAQUE", "").split(",") if p]
    documented = [p for p in os.environ.get("DOCUMENTED", "").split(",") if p]
    removed = [p for p in os.environ.get("REMOVED", "").split(",") if p]
    problems = []
    for name in sys.argv[2:]:
        values = json.load(open(name))
        if schema is not None:
            # Helm validates the chart's defaults with the given values merged over them.
            for error in jsonschema.Draft202012Validator(schema).iter_errors(merge(defaults, values)):
                problems.append(f"{name}: {'.'.join(map(str, error.path))}: {error.message}")
        else:
            for path in paths(values):
                if any(path == o or path.startswith(o + ".") for o in opaque if path != o) or path in documented:
                    continue
                if any(path.startswith(d + ".") for d in documented):
                    continue
                node = defaults
                for key in path.split("."):
                    node = node.get(key) if isinstance(node, dict) and key in node else KeyError
                    if node is KeyError:
                        break
                if node is KeyError:
                    problems.append(f"{name}: {path} is not a key of the chart's values.yaml")
        for path in paths(values):
            if any(path == r or path.startswith(r + ".") for r in removed):
                problems.append(f"{name}: {path} was removed from the chart")
    for problem in problems:
        print(problem)
    sys.exit(1 if problems else 0)


main()
