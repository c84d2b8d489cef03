#!/usr/bin/env bash
# Installs K3s for a sovereign site, the first command of the quick start:
# K3s without Traefik (sovereign's fabrics bring their own ingress, and
# Traefik would take ports 80/443), its kubeconfig readable by root only
# and copied for the user who ran sudo, and Helm.
#
#   sudo bootstrap/install-k3s.sh [--dry-run] [--airgap DIR] [--version v1.33.5+k3s1]
#
# --dry-run      print every action, change nothing (no root needed)
# --airgap DIR   install with no network, from DIR: `k3s`, `install.sh`
#                (https://get.k3s.io), `k3s-airgap-images-amd64.tar.zst`
#                and `helm`, as the K3s air-gap guide lays them out
# --version V    the K3s release (default: the stable channel)
#
# Idempotent: a second run changes nothing and says so.
#
# Facts (docs.k3s.io): installation/configuration (config file
# /etc/rancher/k3s/config.yaml, `disable`, `write-kubeconfig-mode`),
# installation/airgap (images in /var/lib/rancher/k3s/agent/images/, the
# binary in /usr/local/bin, INSTALL_K3S_SKIP_DOWNLOAD=true), the install
# script's INSTALL_K3S_VERSION and INSTALL_K3S_CHANNEL.
set -euo pipefail
SCRIPT="install-k3s.sh"
# shellcheck source=bootstrap/lib.sh
. "$(dirname "$0")/lib.sh"

AIRGAP=""
VERSION=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --airgap) [ $# -ge 2 ] || fail "--airgap needs a folder"; AIRGAP="$2"; shift ;;
        --version)
            [ $# -ge 2 ] || fail "--version needs a K3s release such as v1.33.5+k3s1"
            [[ "$2" =~ ^v[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+$ ]] || fail "--version $2 is not a K3s release such as v1.33.5+k3s1"
            VERSION="$2"
            shift
            ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) fail "unknown argument $1 (try --help)" ;;
    esac
    shift
done

require_supported_os
require_root
if [ -n "$AIRGAP" ]; then
    for file in k3s install.sh k3s-airgap-images-amd64.tar.zst helm; do
        [ -f "$AIRGAP/$file" ] || fail "--airgap $AIRGAP has no $file (the K3s air-gap guide lists what to download)"
    done
fi

# The configuration K3s reads at every start.
before=$CHANGED
write_file /etc/rancher/k3s/config.yaml 0600 "# Written by sovereign's bootstrap/install-k3s.sh.
disable:
  - traefik
write-kubeconfig-mode: \"0600\""

config_changed=$((CHANGED - before))

# K3s itself: installed unless the wanted release already runs.
installed=""
if [ -x "$ROOT/usr/local/bin/k3s" ]; then
    installed="$("$ROOT/usr/local/bin/k3s" --version 2>/dev/null | awk 'NR == 1 { print $3 }')" || installed=""
fi
if [ -n "$installed" ] && { [ -z "$VERSION" ] || [ "$installed" = "$VERSION" ]; } \
    && systemctl is-active --quiet k3s; then
    say "k3s $installed is installed and running"
    # A changed configuration takes effect at the next start.
    if [ "$config_changed" != 0 ]; then
        run systemctl restart k3s
    fi
elif [ -n "$AIRGAP" ]; then
    copy_file "$AIRGAP/k3s-airgap-images-amd64.tar.zst" /var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst 0644
    copy_file "$AIRGAP/k3s" /usr/local/bin/k3s 0755
    run env INSTALL_K3S_SKIP_DOWNLOAD=true sh "$AIRGAP/install.sh"
else
    if [ -n "$VERSION" ]; then
        run_downloaded https://get.k3s.io "INSTALL_K3S_VERSION=$VERSION"
    else
        run_downloaded https://get.k3s.io INSTALL_K3S_CHANNEL=stable
    fi
fi

# The kubeconfig: root's only, and a copy for the user who ran sudo.
if [ -f "$ROOT/etc/rancher/k3s/k3s.yaml" ]; then
    if [ "$(stat -c %a "$ROOT/etc/rancher/k3s/k3s.yaml")" != 600 ]; then
        run chmod 600 "$ROOT/etc/rancher/k3s/k3s.yaml"
    fi
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
        home="$(getent passwd "$SUDO_USER" | cut -d: -f6)" || home=""
        [ -n "$home" ] || fail "cannot find the home of $SUDO_USER"
        # A kubeconfig the user already has (other clusters) is never replaced.
        target="$home/.kube/config"
        if [ -f "$ROOT$target" ] && ! cmp -s "$ROOT/etc/rancher/k3s/k3s.yaml" "$ROOT$target"; then
            target="$home/.kube/k3s.yaml"
            say "$home/.kube/config exists: the K3s kubeconfig goes to $target (KUBECONFIG=$target)"
        fi
        copy_file "$ROOT/etc/rancher/k3s/k3s.yaml" "$target" 0600
        if [ "$DRY_RUN" = 0 ] && [ "$(stat -c %U "$ROOT$target")" != "$SUDO_USER" ]; then
            run chown "$SUDO_USER" "$ROOT$home/.kube" "$ROOT$target"
        fi
    fi
elif [ "$DRY_RUN" = 0 ]; then
    fail "K3s did not write /etc/rancher/k3s/k3s.yaml: see journalctl -u k3s"
fi

# Helm, for charts the bedrock does not install through K3s.
if command -v helm >/dev/null 2>&1 || [ -x "$ROOT/usr/local/bin/helm" ]; then
    say "helm is present"
elif [ -n "$AIRGAP" ]; then
    copy_file "$AIRGAP/helm" /usr/local/bin/helm 0755
else
    # Helm's installer, from the release tag it is pinned to (helm/helm scripts/get-helm-3).
    run_downloaded https://raw.githubusercontent.com/helm/helm/v3.19.0/scripts/get-helm-3 DESIRED_VERSION=v3.19.0
fi

finish
