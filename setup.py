"""Build script for vcalc's Cython kernels.

Everything about the package except the compiled extensions lives in
``pyproject.toml``. This file declares the extensions once, with:

* NumPy's include directory and a fixed ``NPY_NO_DEPRECATED_API``;
* ``-O3`` (no ``-ffast-math``: the kernels rely on IEEE semantics for inf,
  NaN and signed zeros, and on the order of summation we wrote);
* the Cython directives, set here and nowhere else;
* ``VCALC_CYTHON_DEBUG=1`` in the environment turns bounds checking,
  wraparound and initialisation checks back on, and drops to ``-O0 -g``,
  for a debug build that the test suite can run against.
"""

import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("VCALC_CYTHON_DEBUG", "0") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

if sys.platform == "win32":
    compile_args = ["/Od", "/Zi"] if DEBUG else ["/O2"]
else:
    compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]

# Recorded in the extension so that ``vcalc.show_config()`` can report how it
# was built.  The value is passed as a C string literal.
build_flags = " ".join(compile_args) + (" (debug: boundscheck on)" if DEBUG else "")

macros = [
    ("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION"),
    ("VCALC_BUILD_FLAGS", '"' + build_flags + '"'),
]


def ext(name, extra=()):
    return Extension(
        f"vcalc.{name}",
        [f"src/vcalc/{name}.pyx"],
        include_dirs=[np.get_include(), "src/vcalc"],
        define_macros=macros,
        extra_compile_args=compile_args + list(extra),
    )


# The finite-difference loops must round exactly like the NumPy combine of
# the vectorised evaluator (so the two agree bit for bit): no fused
# multiply-add contraction of ``acc += w * v``.
fp_strict = [] if sys.platform == "win32" else ["-ffp-contract=off"]


setup(
    ext_modules=cythonize(
        [ext("_kernels"), ext("_qf_kernels"), ext("_fd_kernels", fp_strict)],
        compiler_directives=directives,
        # Recompile when the debug switch flips between builds in one tree.
        force=DEBUG,
    ),
)
