#!/usr/bin/env bash
# The published study (docs/study/): one command makes it on the machine it runs on.
#
#   sudo bash scripts/study.sh [OUT]        # OUT defaults to docs/study
#
# 1. puts Debian sid's Apptainer on PATH (scripts/debian-roots.sh apptainer-bin: built once, cached),
#    so the apptainer and singularity rows are measured;
# 2. runs the full `cops-grid bench runtimes --interop` (every runtime the study names, full
#    sizes, repetitions extended until the steady workloads resolve ±3 % within the caps, the
#    feature matrix and the criteria, the Docker -> Singularity experiment);
# 3. runs `cops-grid bench orchestrators --quick` (COPS_STUDY_ORCHESTRATORS=no skips it);
# 4. copies the reports (Markdown, HTML, PNG plots, raw JSON) into OUT/runtimes and
#    OUT/orchestrators and writes OUT/run.txt (command, commit, date, load).
# OUT/README.md (the answers) is written by hand from these reports.
# Extra arguments for bench runtimes: COPS_STUDY_ARGS (e.g. "--resolve-budget 600").
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/study}
WORK=$(mktemp -d /var/tmp/cops-study.XXXXXX)
chmod 755 "$WORK" # the rootless checks run the image as nobody: it must reach it
trap 'rm -rf "$WORK"' EXIT
say() { printf 'study: %s\n' "$*" >&2; }

if bin=$(bash scripts/debian-roots.sh apptainer-bin); then
    PATH="$bin:$PATH"
else
    say "Apptainer's Debian root could not be built: its rows will say why"
fi
export PATH

started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
say "bench runtimes (full, --interop) into $WORK/runtimes"
# shellcheck disable=SC2086 # COPS_STUDY_ARGS is a list of words
cops-grid bench runtimes --interop --out "$WORK/runtimes" ${COPS_STUDY_ARGS:-} >"$WORK/runtimes.log" 2>&1 || {
    tail -20 "$WORK/runtimes.log" >&2
    exit 1
}
mkdir -p "$OUT/runtimes"
cp "$WORK"/runtimes/report.md "$WORK"/runtimes/report.html "$WORK"/runtimes/results.json "$OUT/runtimes/"
cp "$WORK"/runtimes/*.png "$OUT/runtimes/" 2>/dev/null || true

if [ "${COPS_STUDY_ORCHESTRATORS:-quick}" != no ]; then
    say "bench orchestrators --quick into $WORK/orchestrators"
    if cops-grid bench orchestrators --quick --out "$WORK/orchestrators" >"$WORK/orchestrators.log" 2>&1; then
        mkdir -p "$OUT/orchestrators"
        cp "$WORK"/orchestrators/*.md "$WORK"/orchestrators/*.json "$OUT/orchestrators/"
        cp "$WORK"/orchestrators/*.png "$WORK"/orchestrators/*.html "$OUT/orchestrators/" 2>/dev/null || true
    else
        say "bench orchestrators failed (kept out of $OUT):"
        tail -5 "$WORK/orchestrators.log" >&2
    fi
fi

dirty=$(git status --porcelain -- computeops_grid | wc -l)
{
    echo "command: bash scripts/study.sh $OUT"
    echo "bench runtimes arguments: --interop ${COPS_STUDY_ARGS:-}"
    echo "commit: $(git rev-parse HEAD) ($dirty files under computeops_grid/ differ from it)"
    echo "host: $(hostname), $(nproc) cores, $(uname -r)"
    echo "started: $started"
    echo "finished: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/run.txt"
say "done: $OUT"
