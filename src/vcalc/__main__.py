"""``python -m vcalc`` (also the ``vcalc`` command): configuration and self-check.

Prints :func:`vcalc.show_config` and checks every compiled kernel against the
NumPy reference on random and edge-case input; exits with status 1 on any
mismatch or when the extension is missing.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m vcalc``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="vcalc",
        description="Show how vcalc was built and check every kernel against the reference.",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random cases (default 0)")
    args = parser.parse_args(argv)

    import vcalc
    from vcalc import _selfcheck

    vcalc.show_config()
    return 0 if _selfcheck.run(seed=args.seed) else 1


if __name__ == "__main__":
    sys.exit(main())
