"""Build script for vcalc's Cython kernels.

Everything about the package except the compiled extensions lives in
``pyproject.toml``. This file declares the extensions once, with:

* NumPy's include directory and a fixed ``NPY_NO_DEPRECATED_API``;
* ``-O3`` (no ``-ffast-math``: the kernels rely on IEEE semantics for inf,
  NaN and signed zeros, and on the order of summation we wrote);
* the Cython directives, set here and nowhere else;
* ``VCALC_CYTHON_DEBUG=1`` in the environment turns bounds checking,
  wraparound and initialisation checks back on, and drops to ``-O0 -g``,
  for a debug build that the test suite can run against;
* ``VCALC_SANITIZE=address`` (or ``address,undefined``) in the environment
  builds every extension with AddressSanitizer (and UndefinedBehaviorSanitizer):
  ``-fsanitize=... -fno-omit-frame-pointer -g -O1`` on the compile and link
  lines (``-O0`` instead when ``VCALC_CYTHON_DEBUG`` is also set).  gcc and
  clang only.  CPython itself is not instrumented, so the tests then run with
  the sanitizer runtime preloaded: ``tools/asan.sh`` and
  ``docs/memory-checks.md`` say how.

The vectorised kernels of ``_kernels`` (``_vkern.h``, ``_vmath.h``) add, on
gcc and clang:

* ``-fopenmp-simd``: honour ``#pragma omp simd reduction(...)``, which lets
  the compiler reorder *those* sums and maxima across vector lanes, loop by
  loop, where we allowed it; every other loop keeps strict IEEE order (this
  is what ``-ffast-math`` would have given up everywhere);
* ``-fno-trapping-math``: floating-point operations may be assumed not to
  trap, so that the compiler may turn the clamps and blends of vcalc's exp
  into branch-free vector selects.  vcalc never unmasks FP exceptions, and
  its results do not depend on the FP status flags;
* ``-fopenmp`` when the compiler can build and link an OpenMP program (it is
  tried first, see ``BuildExt``); ``VCALC_NO_OPENMP=1`` leaves it out.
  Without it the kernels are serial and ``show_config()`` says so.

The instruction-set paths (baseline, AVX2+FMA, AVX-512) are selected in the
C code itself with ``__attribute__((target(...)))`` and chosen at import
from what the CPU reports, so a wheel built for baseline x86-64 still runs
AVX2 or AVX-512 code where the CPU has it: no ``-march`` flag belongs here.
"""

import os
import sys
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("VCALC_CYTHON_DEBUG", "0") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

SANITIZERS = ("address", "undefined")
SANITIZE = [s.strip() for s in os.environ.get("VCALC_SANITIZE", "").split(",") if s.strip()]
if SANITIZE and (sys.platform == "win32" or not set(SANITIZE) <= set(SANITIZERS)):
    sys.exit(
        f"VCALC_SANITIZE={os.environ['VCALC_SANITIZE']!r}: expected a comma-separated "
        f"subset of {', '.join(SANITIZERS)}, with gcc or clang"
    )

if sys.platform == "win32":
    compile_args = ["/Od", "/Zi"] if DEBUG else ["/O2"]
    link_args = []
else:
    compile_args = ["-O0", "-g"] if DEBUG else (["-O1", "-g"] if SANITIZE else ["-O3"])
    link_args = []
    if SANITIZE:
        sanitize_args = ["-fsanitize=" + ",".join(SANITIZE), "-fno-omit-frame-pointer"]
        compile_args += sanitize_args
        link_args += sanitize_args

# Recorded in the extension so that ``vcalc.show_config()`` can report how it
# was built.  The value is passed as a C string literal.
build_flags = " ".join(compile_args) + (" (debug: boundscheck on)" if DEBUG else "")

macros = [
    ("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION"),
    ("VCALC_BUILD_FLAGS", '"' + build_flags + '"'),
]


def ext(name, extra=(), depends=()):
    return Extension(
        f"vcalc.{name}",
        [f"src/vcalc/{name}.pyx"],
        include_dirs=[np.get_include(), "src/vcalc"],
        define_macros=macros,
        extra_compile_args=compile_args + list(extra),
        extra_link_args=list(link_args),
        depends=[f"src/vcalc/{d}" for d in depends],
    )


VKERN_HEADERS = ["_vkern.h", "_vkern_isa.h", "_vkern_body.h", "_vmath.h", "_vexp512.h"]
simd_flags = [] if sys.platform == "win32" else ["-fopenmp-simd", "-fno-trapping-math"]
OPENMP_EXTENSIONS = {"vcalc._kernels"}


class BuildExt(build_ext):
    """build_ext that adds OpenMP to the threaded extensions when the compiler has it."""

    def _has_openmp(self, flag):
        if os.environ.get("VCALC_NO_OPENMP", "0") not in ("", "0"):
            return False
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "omp.c")
            with open(src, "w") as fh:
                fh.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
            try:
                objs = self.compiler.compile([src], output_dir=tmp, extra_postargs=[flag])
                self.compiler.link_executable(
                    objs, os.path.join(tmp, "omp"), extra_postargs=[flag]
                )
            except Exception:  # no OpenMP: any compile or link error
                return False
        return True

    def build_extensions(self):
        flag = "/openmp" if self.compiler.compiler_type == "msvc" else "-fopenmp"
        if self._has_openmp(flag):
            for e in self.extensions:
                if e.name in OPENMP_EXTENSIONS:
                    e.extra_compile_args.append(flag)
                    if flag == "-fopenmp":
                        e.extra_link_args.append(flag)
        super().build_extensions()


# The finite-difference loops must round exactly like the NumPy combine of
# the vectorised evaluator (so the two agree bit for bit): no fused
# multiply-add contraction of ``acc += w * v``.
fp_strict = [] if sys.platform == "win32" else ["-ffp-contract=off"]


setup(
    ext_modules=cythonize(
        [
            ext("_kernels", simd_flags, VKERN_HEADERS),
            ext("_qf_kernels"),
            ext("_fd_kernels", fp_strict),
        ],
        compiler_directives=directives,
        # Recompile when the debug switch flips between builds in one tree.
        force=DEBUG,
    ),
    cmdclass={"build_ext": BuildExt},
)
