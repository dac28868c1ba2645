#!/usr/bin/env bash
# Build (once) the Debian root filesystems that bring the real Apptainer and HTCondor to this
# Debian 12 machine, and print the root's path:
#
#   bash scripts/debian-roots.sh apptainer   # sid, minbase + apptainer + squashfs-tools (~30 s)
#   bash scripts/debian-roots.sh htcondor    # trixie, minbase + htcondor + bubblewrap (apt inside)
#   bash scripts/debian-roots.sh apptainer-bin   # the apptainer root, then print a directory
#       holding `apptainer` and `singularity` launchers for PATH (scripts/apptainer-launcher.py)
#
# Neither program is packaged for Debian 12; both are Debian's own builds in newer suites, and
# both run here inside their root, entered with bubblewrap (tests/services/debian_roots.py).
# Nothing on the host is upgraded and nothing outside Debian's archive is used.
#
# Roots are cached under $COPS_ROOTS_CACHE (default /var/cache/cops-grid/roots): a later run on
# the same machine reuses them; a root whose recipe changed (RECIPE below) or that is absent or
# half-built is built again. Concurrent callers wait on one lock per root. Needs root and
# debootstrap (etc/deps/apt-debian-roots.txt); the mirror is $COPS_DEBIAN_MIRROR or deb.debian.org.
set -euo pipefail

CACHE=${COPS_ROOTS_CACHE:-/var/cache/cops-grid/roots}
MIRROR=${COPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Bump a recipe when what goes into a root changes: cached roots of another recipe are rebuilt.
RECIPE_APPTAINER="apptainer-1"
RECIPE_HTCONDOR="htcondor-1"

say() { printf 'debian-roots: %s\n' "$*" >&2; }

need_root() {
    if [ "$(id -u)" != 0 ]; then say "must run as root (debootstrap)"; exit 2; fi
    if ! command -v debootstrap >/dev/null; then
        say "debootstrap is missing: apt-get install debootstrap (etc/deps/apt-debian-roots.txt)"; exit 2
    fi
}

# run a command inside $1 as root with /proc and /dev, in a private mount namespace
in_root() {
    local root=$1; shift
    unshare --mount --propagation private -- sh -c '
        root=$1; shift
        mount --rbind /proc "$root/proc" && mount --rbind /dev "$root/dev" && exec chroot "$root" "$@"
    ' sh "$root" "$@"
}

build_apptainer() {
    local dir=$1
    debootstrap --variant=minbase --include=apptainer,squashfs-tools sid "$dir" "$MIRROR" >"$dir.log" 2>&1 \
        || { tail -20 "$dir.log" >&2; return 1; }
    # apptainer bind-mounts /etc/hosts into containers: it must exist and not be empty
    printf '127.0.0.1 localhost\n' >"$dir/etc/hosts"
    # as root Apptainer asks for the full capability set; a sandbox may lack some (CAP_SYS_RESOURCE)
    sed -i 's/^root default capabilities = full/root default capabilities = no/' \
        "$dir/etc/apptainer/apptainer.conf"
    grep -q '^root default capabilities = no' "$dir/etc/apptainer/apptainer.conf"
}

build_htcondor() {
    local dir=$1
    debootstrap --variant=minbase trixie "$dir" "$MIRROR" >"$dir.log" 2>&1 \
        || { tail -20 "$dir.log" >&2; return 1; }
    # debootstrap --include=htcondor cannot resolve its dependencies: apt inside the root
    printf 'deb %s trixie main\n' "$MIRROR" >"$dir/etc/apt/sources.list"
    cp /etc/resolv.conf "$dir/etc/resolv.conf"
    printf '127.0.0.1 localhost\n' >"$dir/etc/hosts"
    in_root "$dir" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends htcondor bubblewrap python3 ca-certificates && apt-get clean' \
        >>"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; return 1; }
    test -x "$dir/usr/sbin/condor_master"
}

# <cache>/bin/{apptainer,singularity}: the launcher with its root filled in (replaced atomically)
install_launchers() {
    local root=$1 bin="$CACHE/bin" here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    mkdir -p "$bin"
    chmod 755 "$CACHE" "$bin"
    for tool in apptainer singularity; do
        sed "s|@ROOT@|$root|" "$here/apptainer-launcher.py" >"$bin/.$tool.$$"
        chmod 755 "$bin/.$tool.$$"
        mv -f "$bin/.$tool.$$" "$bin/$tool"
    done
    echo "$bin"
}

main() {
    local name=${1:-}
    local recipe
    if [ "$name" = apptainer-bin ]; then
        local root
        root=$(main apptainer)
        install_launchers "$root"
        exit 0
    fi
    case "$name" in
    apptainer) recipe=$RECIPE_APPTAINER ;;
    htcondor) recipe=$RECIPE_HTCONDOR ;;
    *) echo "usage: $0 apptainer|htcondor" >&2; exit 2 ;;
    esac
    local root="$CACHE/$name"
    local stamp="$root/.cops-root"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$recipe" ]; then echo "$root"; exit 0; fi
    need_root
    mkdir -p "$CACHE"
    exec 9>"$CACHE/$name.lock"
    flock 9
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$recipe" ]; then echo "$root"; exit 0; fi
    local tmp="$CACHE/$name.new"
    rm -rf "$tmp" "$tmp.log"
    mkdir -p "$tmp"
    say "building $name root in $tmp (recipe $recipe)"
    local t0=$SECONDS
    "build_$name" "$tmp"
    echo "$recipe" >"$tmp/.cops-root"
    rm -rf "$root.old"
    if [ -e "$root" ]; then mv "$root" "$root.old"; fi
    mv "$tmp" "$root"
    mv "$tmp.log" "$root.log"
    rm -rf "$root.old"
    say "built $name root in $((SECONDS - t0)) s: $root"
    echo "$root"
}

main "$@"
