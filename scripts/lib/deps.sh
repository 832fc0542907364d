# Sourced by the scripts in scripts/: installs what quorumbench needs on a fresh Debian machine, each thing only
# when it is missing. apt-get runs as root (or through sudo when available).

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

qb_install_deps() {
    qb_apt_install libjemalloc-dev zlib1g-dev pkg-config
}
