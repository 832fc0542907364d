# Sourced by the scripts in scripts/: installs what quorumbench needs on a fresh Debian machine, each thing only
# when it is missing. apt-get runs as root (or through sudo when available); Python packages come from PyPI.

qb_apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "quorumbench: installing ${missing[*]} (apt-get)" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo="sudo"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Python packages the test suite uses as oracles (HdrHistogram's own log reader).
qb_pip_install() {
    python3 -c "import hdrh" 2>/dev/null && return 0
    echo "quorumbench: installing the hdrhistogram Python package (pip)" >&2
    python3 -m pip install -q hdrhistogram 2>&1 | grep -v "Running pip as the 'root' user" >&2 || true
    python3 -c "import hdrh"
}

qb_install_deps() {
    qb_apt_install libjemalloc-dev zlib1g-dev pkg-config
}

# Builds the release binary (progress on stderr) and prints its path.
qb_release_binary() {
    swift build -c release --product quorumbench >&2
    echo "$(swift build -c release --show-bin-path)/quorumbench"
}

# Runs a test stage with a time limit: a stage that hangs fails with one line naming it (and leaves no test
# process behind) instead of running into CI's own limit. Usage: qb_stage NAME SECONDS command...
qb_stage() {
    local name="$1" limit="$2"
    shift 2
    local start=$SECONDS rc=0
    timeout --kill-after=10 "$limit" "$@" || rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        pkill -f quorumbenchPackageTests.xctest 2>/dev/null || true
        echo "quorumbench: test stage '$name' did not finish within ${limit} s (a hang); stopped" >&2
    fi
    [ "$rc" -eq 0 ] && echo "quorumbench: stage '$name' took $((SECONDS - start)) s" >&2
    return "$rc"
}
