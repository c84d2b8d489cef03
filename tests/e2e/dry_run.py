"""Server-side dry run of built objects against a real Kubernetes API server.

    python3 dry_run.py KUBECONFIG CRD_DIR OBJECTS.json

Creates the CRDs (from CRD_DIR) and the namespaces the objects use (real creates: an API server with
no controllers accepts both), then sends every object as a server-side apply with dryRun=All and
reports each rejection. Needs nothing but the API server: no kubelet, no controllers. Exits 1 when any
object is rejected. OBJECTS.json is a JSON array of objects (patches excluded).
"""
import json
import sys
import time

import yaml
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException


def main():
    kubeconfig, crd_dir, objects_path = sys.argv[1:4]
    api_client = config.new_client_from_config(config_file=kubeconfig)
    extensions = client.ApiextensionsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    import os
    for name in sorted(os.listdir(crd_dir)):
        if not name.endswith(".yaml"):
            continue
        for crd in yaml.safe_load_all(open(os.path.join(crd_dir, name))):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            try:
                extensions.create_custom_resource_definition(crd)
            except ApiException as e:
                if e.status != 409:
                    raise
    # CRDs become servable once Established.
    deadline = time.time() + 60
    while time.time() < deadline:
        pending = [c.metadata.name for c in extensions.list_custom_resource_definition().items
                   if not any(cond.type == "Established" and cond.status == "True" for cond in (c.status.conditions or []))]
        if not pending:
            break
        time.sleep(1)
    objects = json.load(open(objects_path))
    for namespace in sorted({o["metadata"].get("namespace") for o in objects if o["metadata"].get("namespace")}
                            | {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}):
        try:
            core.create_namespace({"metadata": {"name": namespace}})
        except ApiException as e:
            if e.status != 409:
                raise
    dyn = dynamic.DynamicClient(api_client)
    rejected = 0
    for obj in objects:
        api = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        try:
            api.server_side_apply(body=obj, name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace"),
                                  field_manager="sovereign", force_conflicts=True, dry_run="All")
        except ApiException as e:
            rejected += 1
            print(f"rejected {obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}: {e.status} {e.body}")
    print(f"{len(objects) - rejected} of {len(objects)} objects accepted (dry run)")
    sys.exit(1 if rejected else 0)


main()
