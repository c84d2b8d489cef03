# shellcheck shell=bash
# What the bootstrap scripts share: messages, the dry run, writes that
# change nothing when the file already says it, and the checks of the
# machine. Sourced, never run.
#
# SOVEREIGN_BOOTSTRAP_ROOT prefixes every path the scripts read or write
# (the tests run them on a fake root with stubbed system commands);
# unset, it is the machine's own `/`.

ROOT="${SOVEREIGN_BOOTSTRAP_ROOT:-}"
DRY_RUN=0
CHANGED=0

say() { printf '%s: %s\n' "$SCRIPT" "$*"; }
fail() { printf '%s: error: %s\n' "$SCRIPT" "$*" >&2; exit 1; }

# Runs a command, or with --dry-run prints it.
run() {
    if [ "$DRY_RUN" = 1 ]; then
        say "would run: $*"
    else
        "$@"
    fi
    CHANGED=1
}

# Writes CONTENT to PATH (under ROOT) with MODE, atomically, unless the
# file already holds exactly that: then it says so and changes nothing.
write_file() {
    local path="$ROOT$1" mode="$2" content="$3"
    if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then
        say "unchanged: $1"
        return 0
    fi
    if [ "$DRY_RUN" = 1 ]; then
        say "would write: $1 (mode $mode)"
        CHANGED=1
        return 0
    fi
    mkdir -p "$(dirname "$path")"
    local tmp
    tmp="$(mktemp "$path.XXXXXX")"
    printf '%s\n' "$content" > "$tmp"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$path"
    say "wrote: $1"
    CHANGED=1
}

# Copies FILE to PATH (under ROOT) with MODE unless PATH has its bytes.
copy_file() {
    local from="$1" path="$ROOT$2" mode="$3"
    [ -f "$from" ] || fail "$from is missing"
    if [ -f "$path" ] && cmp -s "$from" "$path"; then
        say "unchanged: $2"
        return 0
    fi
    if [ "$DRY_RUN" = 1 ]; then
        say "would copy: $from -> $2"
        CHANGED=1
        return 0
    fi
    mkdir -p "$(dirname "$path")"
    # Atomic: a copy cut short never leaves a truncated binary in place.
    local tmp
    tmp="$(mktemp "$path.XXXXXX")"
    install -m "$mode" "$from" "$tmp"
    mv -f "$tmp" "$path"
    say "copied: $from -> $2"
    CHANGED=1
}

require_root() {
    if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
        fail "run as root (sudo $SCRIPT), or with --dry-run to see what it would do"
    fi
}

# Linux with systemd and an os-release K3s supports.
require_supported_os() {
    [ "$(uname -s)" = Linux ] || fail "this is $(uname -s): K3s runs on Linux only"
    local release="$ROOT/etc/os-release"
    [ -f "$release" ] || fail "no /etc/os-release: cannot tell which Linux this is"
    local id
    # shellcheck source=/dev/null
    id="$(. "$release" && printf '%s %s' "${ID:-}" "${ID_LIKE:-}")"
    case " $id " in
        *" debian "*|*" ubuntu "*|*" rhel "*|*" fedora "*|*" centos "*|*" rocky "*|*" almalinux "*|*" suse "*|*" sles "*|*" opensuse "*) ;;
        *) fail "unsupported OS ($id): the scripts know Debian, Ubuntu, RHEL and its rebuilds, Fedora and SUSE" ;;
    esac
}

# Downloads URL to a temporary file (failing on any HTTP error, unlike a
# `curl | sh` pipe inside `sh -c`) and runs it by its own `#!` line, with
# the NAME=VALUE arguments in its environment.
run_downloaded() {
    local url="$1"
    shift
    if [ "$DRY_RUN" = 1 ]; then
        say "would download $url and run it with $*"
        CHANGED=1
        return 0
    fi
    local downloaded
    downloaded="$(mktemp)"
    curl -fsSL -o "$downloaded" "$url" || fail "cannot download $url"
    [ -s "$downloaded" ] || fail "$url is empty"
    chmod 700 "$downloaded"
    env "$@" "$downloaded" || fail "$url failed"
    rm -f "$downloaded"
    CHANGED=1
}

finish() {
    if [ "$CHANGED" = 0 ]; then
        say "nothing to do: everything is already in place"
    elif [ "$DRY_RUN" = 1 ]; then
        say "dry run: nothing was changed"
    else
        say "done"
    fi
}
