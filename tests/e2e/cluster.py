"""What the apply tests need from a real Kubernetes API server.

    python3 cluster.py prepare KUBECONFIG CRD_DIR    CRDs (waited for), namespace gpu-operator, node gpu-01
    python3 cluster.py labelled KUBECONFIG FABRIC    every object labelled sovereign.dev/fabric=FABRIC, as JSON
    python3 cluster.py request KUBECONFIG JSON       one request {"method", "path", "content_type", "body"}; prints the status, then the body

Needs only the API server: no kubelet, no controllers.
"""
import json
import os
import sys
import time

import yaml
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException

KINDS = [("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Service"), ("v1", "ServiceAccount"),
         ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"),
         ("networking.k8s.io/v1", "NetworkPolicy"), ("policy/v1", "PodDisruptionBudget"),
         ("helm.cattle.io/v1", "HelmChart")]


def created(call):
    try:
        call()
    except ApiException as e:
        if e.status != 409:
            raise


def prepare(api_client, crd_dir):
    extensions = client.ApiextensionsV1Api(api_client)
    for name in sorted(os.listdir(crd_dir)):
        if name.endswith(".yaml"):
            for crd in yaml.safe_load_all(open(os.path.join(crd_dir, name))):
                if crd and crd.get("kind") == "CustomResourceDefinition":
                    created(lambda: extensions.create_custom_resource_definition(crd))
    deadline = time.time() + 60
    while time.time() < deadline and any(
            not any(c.type == "Established" and c.status == "True" for c in (d.status.conditions or []))
            for d in extensions.list_custom_resource_definition().items):
        time.sleep(1)
    core = client.CoreV1Api(api_client)
    created(lambda: core.create_namespace({"metadata": {"name": "gpu-operator"}}))
    created(lambda: core.create_node({"metadata": {"name": "gpu-01", "labels": {"kubernetes.io/hostname": "gpu-01"}}}))


def labelled(api_client, fabric):
    dyn = dynamic.DynamicClient(api_client)
    found = []
    for api_version, kind in KINDS:
        for item in dyn.resources.get(api_version=api_version, kind=kind).get(
                label_selector=f"sovereign.dev/fabric={fabric}").items:
            found.append(item.to_dict())
    print(json.dumps(found))


def request(api_client, argument):
    spec = json.loads(argument)
    try:
        response = api_client.call_api(spec["path"], spec["method"], header_params={"Content-Type": spec["content_type"]},
                                       body=spec.get("body"), auth_settings=["BearerToken"], _preload_content=False)
        print(response[1])
        print(response[0].data.decode())
    except ApiException as e:
        print(e.status)
        print(e.body.decode() if isinstance(e.body, bytes) else (e.body or ""))


def main():
    command, kubeconfig, argument = sys.argv[1:4]
    api_client = config.new_client_from_config(config_file=kubeconfig)
    {"prepare": prepare, "labelled": labelled, "request": request}[command](api_client, argument)


if __name__ == "__main__":
    main()
