#!/usr/bin/env bash
# valgrind memcheck over the kernel tests: build vcalc as a user gets it
# (-O3, no sanitizer) into a fresh virtual environment and run the reduction,
# exp, quadratic-form, kernel-vs-reference and no-writeback tests under
# memcheck, with PYTHONMALLOC=malloc and tools/valgrind-python.supp (CPython
# and glibc false positives, explained there).  Checks the compiled code as
# shipped, which ASan (tools/asan.sh) does not.  Arguments go to pytest
# instead of the default files; VCALC_SIMD=base checks the baseline SIMD path.
# Exits 99 if memcheck reported an error; the logs are kept and named.
# Here (2 shared cores): 11 min in all, tests 6.5 min (valgrind: 50-70x
# slower than a native run).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
logs="$(mktemp -d "${TMPDIR:-/tmp}/vcalc-valgrind.XXXXXX")"
command -v valgrind >/dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 2; }

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

echo "== pip install '.[test]'"
env -u VCALC_CYTHON_DEBUG -u VCALC_SANITIZE "$py" -m pip install -q "$work/vcalc[test]"
"$py" -c 'import vcalc; vcalc.show_config()'

if [ "$#" -eq 0 ]; then
    # Left out: three accuracy tests whose reference is np.longdouble.
    # valgrind computes x87 long double in double precision ((1 + 2**-60) - 1
    # is 0 under valgrind), so their reference loses ~11 bits and they fail
    # (with the NumPy backend as well), whatever vcalc computes.
    set -- tests/test_reductions.py tests/test_vexp.py tests/test_quadratic.py \
        tests/test_kernels_vs_reference.py tests/test_no_writeback.py \
        --deselect tests/test_reductions.py::test_reductions_within_few_ulp_of_extended_precision \
        --deselect tests/test_vexp.py::test_exp_float64_within_1_1_ulp_over_the_whole_domain \
        --deselect tests/test_vexp.py::test_softmax_float64_relative_error
fi

echo "== pytest under valgrind memcheck (logs: $logs)"
cd "$work/vcalc"
status=0
PYTHONMALLOC=malloc valgrind --tool=memcheck --error-exitcode=99 \
    --leak-check=no --errors-for-leak-kinds=none --num-callers=30 \
    --suppressions="$root/tools/valgrind-python.supp" \
    --log-file="$logs/memcheck.%p.log" \
    "$py" -m pytest -q -p no:cacheprovider "$@" || status=$?
grep -h "ERROR SUMMARY" "$logs"/memcheck.*.log
if [ "$status" -eq 99 ]; then
    echo "== memcheck reported errors: see $logs" >&2
fi
exit "$status"
