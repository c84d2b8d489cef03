"""Validates custom resources against their CRDs' OpenAPI schemas, as an API server would.

    python3 validate_crds.py CRD_DIR OBJECT.json...

For each object, the CRD of its group and kind, the version named in its apiVersion (which must be
served), and that version's openAPIV3Schema: the object must validate (jsonschema), and, because an
API server prunes what a structural schema does not declare, every field must be declared (unless the
schema preserves unknown fields there). Prints one line per problem; exits 1 if there is any.
"""
import json
import sys

import jsonschema
import yaml


def crds(folder):
    import os
    out = {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".yaml"):
            continue
        with open(os.path.join(folder, name)) as f:
            for doc in yaml.safe_load_all(f):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    out[(doc["spec"]["group"], doc["spec"]["names"]["kind"])] = doc
    return out


def undeclared(value, schema, path):
    if not isinstance(schema, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if props is not None and key in props:
                yield from undeclared(item, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                yield from undeclared(item, extra, f"{path}.{key}")
            elif extra is True or (path == "" and key in ("apiVersion", "kind")):
                continue
            else:
                yield f"{path}.{key}: not in the schema (an API server would drop it)"
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from undeclared(item, schema["items"], f"{path}[{i}]")


def main():
    known = crds(sys.argv[1])
    problems = 0
    for path in sys.argv[2:]:
        with open(path) as f:
            obj = json.load(f)
        group, _, version = obj["apiVersion"].rpartition("/")
        crd = known.get((group, obj["kind"]))
        if crd is None:
            print(f"{path}: no CRD for {obj['apiVersion']} {obj['kind']}")
            problems += 1
            continue
        versions = [v for v in crd["spec"]["versions"] if v["name"] == version and v.get("served")]
        if not versions:
            print(f"{path}: {obj['kind']} has no served version {version}")
            problems += 1
            continue
        schema = versions[0]["schema"]["openAPIV3Schema"]
        for error in jsonschema.Draft7Validator(schema).iter_errors(obj):
            print(f"{path}: {'.'.join(map(str, error.path))}: {error.message}")
            problems += 1
        for problem in undeclared({k: v for k, v in obj.items() if k != "metadata"}, schema, ""):
            print(f"{path}: {problem}")
            problems += 1
    sys.exit(1 if problems else 0)


main()
