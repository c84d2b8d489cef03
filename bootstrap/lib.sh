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

# Puts FILE's bytes at PATH (under ROOT) with MODE, atomically (a
# temporary file, then a rename), unless PATH already has exactly them:
# then it says so and changes nothing. VERB, DONE and WHAT word the messages.
place() {
    local from="$1" path="$ROOT$2" mode="$3" verb="$4" done="$5" what="$6"
    if [ -f "$path" ] && cmp -s "$from" "$path"; then
        say "unchanged: $2"
        return 0
    fi
    if [ "$DRY_RUN" = 1 ]; then
        say "would $verb: $what"
        CHANGED=1
        return 0
    fi
    mkdir -p "$(dirname "$path")"
    local tmp
    tmp="$(mktemp "$path.XXXXXX")"
    install -m "$mode" "$from" "$tmp"
    mv -f "$tmp" "$path"
    say "$done: $what"
    CHANGED=1
}

# Writes CONTENT (and a newline) to PATH with MODE.
write_file() {
    local content
    content="$(mktemp)"
    printf '%s\n' "$3" > "$content"
    place "$content" "$1" "$2" write wrote "$1 (mode $2)"
    rm -f "$content"
}

# Copies FILE to PATH with MODE.
copy_file() {
    [ -f "$1" ] || fail "$1 is missing"
    place "$1" "$2" "$3" copy copied "$1 -> $2"
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
