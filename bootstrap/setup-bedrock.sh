#!/usr/bin/env bash
# The bedrock a sovereign site needs on its K3s, the second command of the
# quick start: the NVIDIA runtime checked, the GPU Operator (the device
# plugin with the mixed MIG strategy, GPU feature discovery, the MIG
# manager reading the layouts `sovereign apply` writes) or the standalone
# device plugin, and the External Secrets Operator with its CRDs; each
# from a pinned chart version, through K3s' HelmChart objects (files in
# its auto-deploy folder, which K3s applies and keeps applied).
#
#   sudo bootstrap/setup-bedrock.sh [--dry-run] [--airgap DIR] [--no-operator] [--no-gpu]
#
# --dry-run      print every action, change nothing (no root needed)
# --airgap DIR   charts from DIR/charts/*.tgz (served by K3s itself, no
#                network) and images from DIR/images/*.tar (loaded by K3s)
# --no-operator  the standalone NVIDIA device plugin instead of the GPU
#                Operator (no MIG manager: MIG layouts are then the
#                operator's job, done by hand)
# --no-gpu       a site without NVIDIA GPUs: External Secrets only
#
# Idempotent: a second run changes nothing and says so.
set -euo pipefail
SCRIPT="setup-bedrock.sh"
# shellcheck source=bootstrap/lib.sh
. "$(dirname "$0")/lib.sh"

# Pinned charts. Sources: NVIDIA/gpu-operator tag v25.3.4 (2025-09-17),
# deployments/gpu-operator/values.yaml, repository from its
# scripts/gpu-operator-nvaie.sh; NVIDIA/k8s-device-plugin tag v0.20.0
# (2026-08-19), deployments/helm/nvidia-device-plugin/{Chart,values}.yaml
# and README ("helm repo add nvdp"); external-secrets/external-secrets
# helm-chart-2.9.0 (2026-08-08), the release whose CRDs
# tests/fixtures/upstream/crds/ holds; its chart installs them by default.
GPU_OPERATOR_REPO="https://helm.ngc.nvidia.com/nvidia"
GPU_OPERATOR_VERSION="v25.3.4"
DEVICE_PLUGIN_REPO="https://nvidia.github.io/k8s-device-plugin"
DEVICE_PLUGIN_VERSION="0.20.0"
EXTERNAL_SECRETS_REPO="https://charts.external-secrets.io"
EXTERNAL_SECRETS_VERSION="2.9.0"
# The ConfigMap `sovereign build` writes the mig-parted layouts into
# (targets/k3s/src/mig.rs CONFIG_MAP), in the operator's namespace.
MIG_CONFIG_MAP="sovereign-mig-parted-config"
MANIFESTS="/var/lib/rancher/k3s/server/manifests"

AIRGAP=""
OPERATOR=1
GPU=1
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --airgap) [ $# -ge 2 ] || fail "--airgap needs a folder"; AIRGAP="$2"; shift ;;
        --no-operator) OPERATOR=0 ;;
        --no-gpu) GPU=0 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) fail "unknown argument $1 (try --help)" ;;
    esac
    shift
done

require_supported_os
require_root
[ -d "$ROOT/var/lib/rancher/k3s/server" ] || fail "no K3s server here (/var/lib/rancher/k3s/server): run bootstrap/install-k3s.sh first"

# With --airgap, a chart's file goes into the static folder K3s serves
# (docs.k3s.io add-ons/helm); run in this shell, before the manifest.
stage_chart() {
    local file="$1-${2#v}.tgz"
    [ -n "$AIRGAP" ] || return 0
    [ -f "$AIRGAP/charts/$file" ] || fail "--airgap $AIRGAP has no charts/$file"
    copy_file "$AIRGAP/charts/$file" "/var/lib/rancher/k3s/server/static/charts/$file" 0644
}

# The chart source of a HelmChart: the repository, or the staged file. Prints only.
chart_source() {
    local name="$1" repo="$2" version="$3" file="$1-${3#v}.tgz"
    if [ -n "$AIRGAP" ]; then
        printf '  chart: https://%%{KUBERNETES_API}%%/static/charts/%s' "$file"
    else
        printf '  chart: %s\n  repo: %s\n  version: %s' "$name" "$repo" "$version"
    fi
}

if [ "$GPU" = 1 ]; then
    # The host's driver and container toolkit: the operator here installs
    # neither (driver.enabled and toolkit.enabled are false), K3s finds
    # the toolkit's runtime at its start and ships the `nvidia`
    # RuntimeClass (docs.k3s.io advanced, "Alternative Container Runtime Support").
    command -v nvidia-smi >/dev/null 2>&1 || fail "no NVIDIA driver (nvidia-smi is missing): install the driver, or pass --no-gpu"
    nvidia-smi -L >/dev/null 2>&1 || fail "nvidia-smi finds no GPU: is the driver loaded? (nvidia-smi -L)"
    command -v nvidia-container-runtime >/dev/null 2>&1 \
        || fail "no NVIDIA container toolkit (nvidia-container-runtime): install it, then restart k3s"
    containerd="$ROOT/var/lib/rancher/k3s/agent/etc/containerd/config.toml"
    if [ "$DRY_RUN" = 0 ] && ! grep -q nvidia "$containerd" 2>/dev/null; then
        fail "K3s has no nvidia runtime in $containerd: restart k3s (systemctl restart k3s) now that the toolkit is installed"
    fi
    if [ "$DRY_RUN" = 0 ] && ! k3s kubectl get runtimeclass nvidia >/dev/null 2>&1; then
        fail "the cluster has no RuntimeClass nvidia: K3s ships it in its runtimes manifest; is this K3s older than v1.28.6?"
    fi
    say "the NVIDIA driver, container toolkit and RuntimeClass are in place"
    if [ "$OPERATOR" = 1 ]; then
        stage_chart gpu-operator "$GPU_OPERATOR_VERSION"
        write_file "$MANIFESTS/sovereign-gpu-operator.yaml" 0600 "# Written by sovereign's bootstrap/setup-bedrock.sh.
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata:
  name: gpu-operator
  namespace: kube-system
spec:
$(chart_source gpu-operator "$GPU_OPERATOR_REPO" "$GPU_OPERATOR_VERSION")
  targetNamespace: gpu-operator
  createNamespace: true
  valuesContent: |-
    driver:
      enabled: false
    toolkit:
      enabled: false
    mig:
      strategy: mixed
    migManager:
      enabled: true
      config:
        name: $MIG_CONFIG_MAP
        default: all-disabled"
    else
        stage_chart nvidia-device-plugin "$DEVICE_PLUGIN_VERSION"
        write_file "$MANIFESTS/sovereign-nvidia-device-plugin.yaml" 0600 "# Written by sovereign's bootstrap/setup-bedrock.sh.
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata:
  name: nvidia-device-plugin
  namespace: kube-system
spec:
$(chart_source nvidia-device-plugin "$DEVICE_PLUGIN_REPO" "$DEVICE_PLUGIN_VERSION")
  targetNamespace: nvidia-device-plugin
  createNamespace: true
  valuesContent: |-
    migStrategy: mixed
    runtimeClassName: nvidia
    gfd:
      enabled: true"
    fi
fi

stage_chart external-secrets "$EXTERNAL_SECRETS_VERSION"
write_file "$MANIFESTS/sovereign-external-secrets.yaml" 0600 "# Written by sovereign's bootstrap/setup-bedrock.sh.
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata:
  name: external-secrets
  namespace: kube-system
spec:
$(chart_source external-secrets "$EXTERNAL_SECRETS_REPO" "$EXTERNAL_SECRETS_VERSION")
  targetNamespace: external-secrets
  createNamespace: true"

# Images for an air-gapped site: K3s imports every tarball in its images folder at start.
if [ -n "$AIRGAP" ] && [ -d "$AIRGAP/images" ]; then
    for image in "$AIRGAP"/images/*.tar; do
        [ -e "$image" ] || continue
        copy_file "$image" "/var/lib/rancher/k3s/agent/images/$(basename "$image")" 0644
    done
fi

finish
