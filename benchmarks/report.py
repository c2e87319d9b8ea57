"""Run the full comparison of vcalc with its peers and write ``benchmarks/RESULTS.md``.

Usage (from the repository root, on a quiet machine)::

    python benchmarks/report.py                  # the full run: 1 s of timing per case
    python benchmarks/report.py --quick          # 0.2 s per case, as `python -m vcalc bench`
    python benchmarks/report.py --only "exp;softmax float64 (10, 100)" --output /tmp/r.md

It calls :func:`vcalc._bench.run` (the runner of ``python -m vcalc bench``:
each implementation is checked against vcalc's reference, then all of a
case's implementations are timed in interleaved rounds, in a new order each
round, and their medians compared), echoes its tables as they come, and writes a Markdown file with
the date, the exact command, the machine and build details and the ratio
tables.  ``--only`` keeps the cases whose "family label" contains one of the
``;``-separated substrings (to try the script on a few cases); the file then
says it is a subset.  The exit status is 1 if any implementation did not
match the reference (the tables of the others are still written).
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


class _Tee(io.TextIOBase):
    """A text stream writing to several others (the terminal and a buffer)."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for stream in self.streams:
            stream.write(s)
        return len(s)

    def flush(self):
        for stream in self.streams:
            stream.flush()


def _loadavg():
    try:
        with open("/proc/loadavg", encoding="utf-8") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def _command(argv):
    """The command line that reproduces this run, with the environment that matters."""
    env = [
        f"{k}={shlex.quote(os.environ[k])}"
        for k in ("VCALC_SIMD", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        if k in os.environ
    ]
    script = os.path.relpath(__file__, HERE.parent)  # the same from any directory
    return " ".join(env + ["python", shlex.quote(script)] + [shlex.quote(a) for a in argv])


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="0.2 s of timing per case, not 1 s")
    parser.add_argument(
        "--only",
        default=None,
        help="run only the cases whose 'family label' contains one of these ';'-separated "
        "substrings, e.g. 'exp;softmax float64 (10, 100)'",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random data (default 0)")
    parser.add_argument(
        "--output",
        type=Path,
        default=HERE / "RESULTS.md",
        help="where to write the report (default: benchmarks/RESULTS.md)",
    )
    args = parser.parse_args(argv)

    from vcalc import _backend, _bench

    started = datetime.datetime.now(datetime.timezone.utc)
    facts = _bench.machine_facts()
    buffer = io.StringIO()
    ok = _bench.run(
        quick=args.quick,
        file=_Tee(sys.stdout, buffer),
        seed=args.seed,
        only=args.only,
        header=False,
    )
    minutes = (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds() / 60

    lines = [
        "# vcalc beside its peers: benchmark results",
        "",
        f"Written by `{_command(argv)}` (from the repository root), "
        f"started {started:%Y-%m-%d %H:%M} UTC, {minutes:.1f} minutes.",
        "",
    ]
    if args.only:
        lines += [f"**Subset** (`--only {args.only}`): not the full table.", ""]
    lines += [
        "Every implementation's output was checked against vcalc's NumPy reference "
        "(`vcalc.reference`) before it was timed"
        + ("." if ok else "; **some did not match** (MISMATCH lines below)."),
        f"Timing: medians of interleaved rounds (a new order each round), "
        f"{0.2 if args.quick else 1.0:g} s per case, "
        "one thread for vcalc and torch (except in the threads table). Ratios above 1: vcalc "
        "is faster; `vcalc/np.exp` is vcalc's time over the limit's, `vcalc/np.exp(a)` over "
        "that of np.exp allocating its result, as softmax and log_softmax do.",
        "",
        "## Machine",
        "",
        *(f"- {fact}" for fact in facts),
        f"- load average at the end: {_loadavg()}",
        "",
        "## vcalc build (`vcalc.show_config()`)",
        "",
        "| key | value |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in _backend.config().items()),
        "",
        "## Tables",
        "",
        "```text",
        buffer.getvalue().strip("\n"),
        "```",
        "",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.replace(args.output)
    print(f"\nwrote {args.output}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
