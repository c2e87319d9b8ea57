"""``python -m vcalc`` (also the ``vcalc`` command): configuration, self-check, benchmark.

``python -m vcalc`` prints :func:`vcalc.show_config` and checks every compiled
kernel against the NumPy reference on random and edge-case input; it exits
with status 1 on any mismatch or when the extension is missing.

``python -m vcalc bench`` prints the configuration and a short benchmark:
vcalc beside its peers and the limit, as ratios (see ``vcalc._bench``); it
exits with status 1 if an implementation's output does not match the
reference.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m vcalc``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="vcalc",
        description="Show how vcalc was built and check every kernel against the reference "
        "(default), or benchmark vcalc beside its peers ('bench').",
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=("check", "bench"),
        default="check",
        help="check (default): self-check against the reference; bench: short benchmark",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random cases (default 0)")
    parser.add_argument(
        "--long", action="store_true", help="bench: time each case for 1 s instead of 0.2 s"
    )
    args = parser.parse_args(argv)

    import vcalc

    vcalc.show_config()
    if args.command == "bench":
        from vcalc import _bench

        return 0 if _bench.run(quick=not args.long, seed=args.seed) else 1
    from vcalc import _selfcheck

    return 0 if _selfcheck.run(seed=args.seed) else 1


if __name__ == "__main__":
    sys.exit(main())
