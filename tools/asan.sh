#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer: build vcalc's extensions with
# VCALC_SANITIZE=address,undefined (-fsanitize=... -fno-omit-frame-pointer
# -g -O1, see setup.py) into a fresh virtual environment, and run the test
# suite with the ASan runtime preloaded into the (uninstrumented) CPython.
# Any invalid read or write, use after free, or undefined behaviour in vcalc's
# code aborts the run with a report and a stack trace.  Arguments go to pytest
# instead of the default selection below (the whole suite but a few tests
# that measure the build, not its memory safety).
# gcc as written; with CC=clang, set ASAN_LIB to clang's ASan runtime
# ($(clang -print-file-name=libclang_rt.asan-x86_64.so)).
# Here (2 shared cores): build ~2-3 min, tests ~5-7 min.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sanitize="${VCALC_SANITIZE:-address,undefined}"
asan_lib="${ASAN_LIB:-$("${CC:-gcc}" -print-file-name=libasan.so)}"
[ -e "$asan_lib" ] || { echo "no ASan runtime at $asan_lib (install libasan, or set ASAN_LIB)" >&2; exit 2; }

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

echo "== VCALC_SANITIZE=$sanitize pip install '.[test]'"
VCALC_SANITIZE="$sanitize" "$py" -m pip install -q "$work/vcalc[test]"

# The runtime must be loaded first, so it is preloaded into python (and, by
# inheritance, into the tests' python subprocesses) -- only there: preloaded
# into other programs it can hang them.  detect_leaks=0: CPython does not free
# everything at exit, so LeakSanitizer would report CPython, not vcalc.
# PYTHONMALLOC=malloc: Python objects come from malloc too, with redzones.
run() {
    env LD_PRELOAD="$asan_lib" \
        ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
        PYTHONMALLOC=malloc "$py" "$@"
}
run -c 'import vcalc; vcalc.show_config()'
run - <<'PY'
import sys, vcalc
from vcalc import _backend
assert vcalc.__file__.startswith(sys.prefix), vcalc.__file__
flags = _backend.config()["build_flags"]
assert "-fsanitize=" in flags, f"not a sanitizer build: {flags}"
PY

if [ "$#" -eq 0 ]; then
    # Left out, because they measure the build, not its memory safety:
    #  - show_config's build flags are expected to say -O3 or debug (-O1 here);
    #  - Ctrl-C must stop a run within 0.6 s (the instrumented code is slower);
    #  - tests/test_memory.py measures leaks, not safety, with bounds set for
    #    an uninstrumented build: under PYTHONMALLOC=malloc tracemalloc sees
    #    the finite-difference cases keep ~14 kB per 500 calls (not growing
    #    with the number of calls), with or without ASan, and ASan's
    #    quarantine of freed blocks grows the C heap and RSS by design.
    set -- \
        --deselect tests/test_selfcheck.py::test_show_config_reports_build \
        --deselect tests/test_interrupt.py::test_interrupt_stops_promptly \
        --deselect tests/test_memory.py
fi

echo "== pytest under ASan ($sanitize)"
cd "$work/vcalc"
status=0
# --capture=sys: pytest then captures sys.stdout/stderr only, so a report that
# the sanitizer writes to fd 2 before it aborts the process reaches the log
# (with fd capture it would die with the test's captured output, unseen).
run -m pytest -q -p no:cacheprovider --capture=sys "$@" 2>&1 | tee "$work/pytest.log" || status=$?
if grep -qE "ERROR: AddressSanitizer|runtime error:" "$work/pytest.log"; then
    echo "== sanitizer reports above" >&2
    [ "$status" -ne 0 ] || status=1
fi
exit "$status"
