#!/usr/bin/env bash
# Set up cops-grid on a fresh Debian 12 machine (as root) and run the example job or the tests.
#
#   bash scripts/setup.sh example   # install everything, run etc/examples/hello.yaml end to end
#   bash scripts/setup.sh test      # install everything, run the test suite
#
# Installs the Debian packages listed in etc/deps/apt-*.txt, the Python package with its
# test extras and the pip packages in etc/deps/pip-*.txt, and builds the embedded busybox
# image. Services the tests need (Slurm, ARC CE, DiracX, dockerd, Nagios) are started by
# the tests' own fixtures.
set -euo pipefail
mode=${1:-example}
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*" >&2; }

apt_packages() { grep -hvE '^\s*(#|$)' etc/deps/apt-*.txt | sed 's/\s*#.*//' | sort -u; }
pip_packages() { grep -hvE '^\s*(#|$)' etc/deps/pip-*.txt 2>/dev/null | sed 's/\s*#.*//' | sort -u; }

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    missing=$(apt_packages | while read -r p; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"; done)
    if [ -n "$missing" ]; then
        say "installing Debian packages: $(echo $missing)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $missing >/dev/null
    fi
else
    say "not root or no apt-get: skipping Debian packages ($(apt_packages | wc -l) listed in etc/deps/)"
fi

mapfile -t extra < <(pip_packages)
say "installing cops-grid (pip install -e .[test]) and ${#extra[@]} pip packages from etc/deps/, pinned by etc/deps/constraints.txt"
python3 -m pip install -q --disable-pip-version-check -c etc/deps/constraints.txt -e '.[test]' "${extra[@]}"

say "building the embedded busybox image in the local image repository"
python3 -m computeops_grid.images.default

case "$mode" in
example)
    say "cops-grid submit etc/examples/hello.yaml --wait"
    cops-grid submit etc/examples/hello.yaml --wait
    say "cops-grid list"
    cops-grid list --json | python3 -c 'import json,sys; [print(j["id"], j["name"], j["state"], "exit", j["exit_code"]) for j in json.load(sys.stdin)]'
    ;;
test)
    say "installing the test-only backend plugin (proves entry-point registration)"
    python3 -m pip install -q --disable-pip-version-check --no-deps -e tests/plugins
    say "python3 -m pytest"
    set +e
    python3 -m pytest "${@:2}"
    rc=$?
    set -e
    if [ "$rc" = 5 ]; then echo "pytest collected no tests: that is a failure" >&2; exit 1; fi
    exit "$rc"
    ;;
*)
    echo "usage: $0 example|test [pytest args...]" >&2
    exit 2
    ;;
esac
