#!/usr/bin/env bash
# Debug build: compile vcalc with Cython's bounds checking, wraparound and
# initialisation checks on, at -O0 -g (VCALC_CYTHON_DEBUG=1, see setup.py),
# into a fresh virtual environment, and run the whole test suite against it
# (pytest's default selection, -m 'not slow').  Arguments go to pytest, e.g.
#   tools/debug-build.sh -m slow            # the long property sweeps too
#   tools/debug-build.sh tests/test_quadratic.py
# An out-of-bounds index in a typed memoryview then raises IndexError instead
# of reading or writing past the buffer.  Raw-pointer code (the C headers and
# the nogil helpers) is not checked here: tools/asan.sh and tools/valgrind.sh.
# Here (2 shared cores): build ~70 s, tests 2-4 min (5433 tests at 94a8c26,
# 8113 at 66f5e62).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Build from a copy of the checkout: pip builds in the source tree (build/,
# src/vcalc/*.c) and reuses objects it finds there, which would mix this
# build with another one, and would disturb an editable install.
mkdir "$work/vcalc"
tar -C "$root" -cf - \
    --exclude=./.git --exclude=./build --exclude=./dist --exclude='*.egg-info' \
    --exclude='*.so' --exclude='*.o' --exclude='*.c' --exclude='*.html' \
    --exclude=__pycache__ --exclude=.hypothesis --exclude=.pytest_cache \
    --exclude=.benchmarks --exclude=.venv . | tar -C "$work/vcalc" -xf -

"${PYTHON:-python3}" -m venv "$work/venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
py="$work/venv/bin/python"

echo "== VCALC_CYTHON_DEBUG=1 pip install '.[test]'"
VCALC_CYTHON_DEBUG=1 "$py" -m pip install -q "$work/vcalc[test]"
"$py" -c 'import vcalc; vcalc.show_config()'
"$py" - <<'PY'
import sys, vcalc
from vcalc import _backend
assert vcalc.__file__.startswith(sys.prefix), vcalc.__file__
flags = _backend.config()["build_flags"]
assert "boundscheck on" in flags, f"not a debug build: {flags}"
PY

echo "== pytest (debug build)"
cd "$work/vcalc"
"$py" -m pytest -q -p no:cacheprovider "$@"
