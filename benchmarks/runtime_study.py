"""The container runtime study, quick sizes: every runtime against bare metal, in one run.

Runs `cops-grid bench runtimes --quick` through its library entry (the same code as the CLI):
bare metal, the reference, and every runtime found here run the same workloads from the same
image, interleaved; then it prints the report's main table (cost ratio to bare metal with a
95 % interval; `~` = no real difference) and the report's opening answer.

    python3 benchmarks/runtime_study.py [--repeat 5] [--runtimes bubblewrap,runc,...] [--out DIR] [--full]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from computeops_grid.bench import runtime_study
from computeops_grid.bench.runtimes import DEFAULT_RUNTIMES
from computeops_grid.errors import CopsError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per workload and system")
    parser.add_argument("--runtimes", default=",".join(DEFAULT_RUNTIMES), help="comma-separated runtimes")
    parser.add_argument("--out", type=Path, help="report directory (default: a new temporary one)")
    parser.add_argument("--full", action="store_true", help="full problem sizes instead of --quick")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="cops-runtime-study-", dir="/tmp"))
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o755)  # the "works rootless" check runs as an unprivileged user: the image must be reachable
    options = runtime_study.Options(
        out=out,
        runtimes=[r.strip() for r in args.runtimes.split(",") if r.strip()],
        repeats=args.repeat,
        quick=not args.full,
    )
    started = time.perf_counter()
    try:
        written = runtime_study.run(options)
    except CopsError as exc:
        print(f"Error: {exc.message}" + (f"\nHint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    print(runtime_study.table_text(written))
    print(f"\n{runtime_study.answer_text(written)}\n")
    print(f"study took {elapsed:.0f} s ({'full' if args.full else 'quick'} sizes, {args.repeat} repetitions)")
    print(f"report: {written.markdown}  {written.html}  raw: {written.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
