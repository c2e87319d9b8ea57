"""Backend selection: the compiled Cython kernels or the NumPy reference.

The process-wide default is ``"cython"`` when the extension modules import
and ``"numpy"`` otherwise (with one ``RuntimeWarning`` at import, naming the
import error).  :func:`set_backend` changes the process-wide default;
:func:`use_backend` overrides it for the current thread only, for the
duration of a ``with`` block, so threads never see each other's choice.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

__all__ = [
    "get_backend",
    "set_backend",
    "use_backend",
    "show_config",
    "get_num_threads",
    "set_num_threads",
    "num_threads",
    "BACKENDS",
]

BACKENDS = ("cython", "numpy")

_EXTENSIONS = ("_kernels", "_qf_kernels", "_fd_kernels")


def _load_extensions() -> tuple[dict[str, Any], str | None]:
    """Import every compiled module; return them and the first import error.

    OpenMP threads that wait for work should sleep rather than spin: the
    kernels' parallel regions are short and far apart, and a spinning thread
    takes the core that another process, or another of the user's threads,
    needs.  libgomp reads ``OMP_WAIT_POLICY`` once, when it is loaded -- here,
    with the extension -- so it is set to PASSIVE for the import only (unless
    the user set it) and removed again, so that other libraries loading their
    own OpenMP runtime later do not inherit vcalc's choice.
    """
    mods: dict[str, Any] = {}
    ours = "OMP_WAIT_POLICY" not in os.environ
    if ours:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        for name in _EXTENSIONS:
            try:
                mods[name] = importlib.import_module(f"vcalc.{name}")
            except ImportError as err:  # not compiled, or built for another Python
                return {}, f"{type(err).__name__}: {err}"
    finally:
        if ours:
            del os.environ["OMP_WAIT_POLICY"]
    return mods, None


_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY", "PASSIVE (set by vcalc at import)")


_ext, _ext_error = _load_extensions()
HAVE_EXTENSION = not _ext_error

if not HAVE_EXTENSION:
    warnings.warn(
        "vcalc's compiled kernels could not be imported "
        f"({_ext_error}); every function runs on the NumPy reference backend. "
        "Reinstall with `pip install .` on a machine with a C compiler to get them.",
        RuntimeWarning,
        stacklevel=2,
    )


if TYPE_CHECKING:
    from vcalc import _fd_kernels, _kernels, _qf_kernels

    # What :func:`kernels` returns, for the type checker: each compiled module's
    # functions (typed in its ``.pyi`` stub) as attributes of a class, since a
    # module itself cannot be named as a return type.

    class KernelsAPI:
        build_info = staticmethod(_kernels.build_info)
        simd_path = staticmethod(_kernels.simd_path)
        qf_direct_max_n = staticmethod(_kernels.qf_direct_max_n)
        logsumexp_rows = staticmethod(_kernels.logsumexp_rows)
        logsumexp_rows_weighted = staticmethod(_kernels.logsumexp_rows_weighted)
        reduce_fast = staticmethod(_kernels.reduce_fast)
        softmax_rows = staticmethod(_kernels.softmax_rows)
        log_softmax_rows = staticmethod(_kernels.log_softmax_rows)
        vexp = staticmethod(_kernels.vexp)
        quadratic_form_small = staticmethod(_kernels.quadratic_form_small)
        rowdot_half = staticmethod(_kernels.rowdot_half)
        softmax_jacobian_rows = staticmethod(_kernels.softmax_jacobian_rows)

    class QfKernelsAPI:
        quadratic_form_batched = staticmethod(_qf_kernels.quadratic_form_batched)
        quadratic_form_grad_batched = staticmethod(_qf_kernels.quadratic_form_grad_batched)
        quadratic_form_value_and_grad_batched = staticmethod(
            _qf_kernels.quadratic_form_value_and_grad_batched
        )
        quadratic_form_hessian_rows = staticmethod(_qf_kernels.quadratic_form_hessian_rows)
        least_squares_rows = staticmethod(_qf_kernels.least_squares_rows)
        weighted_least_squares_rows = staticmethod(_qf_kernels.weighted_least_squares_rows)
        weighted_least_squares_identity_rows = staticmethod(
            _qf_kernels.weighted_least_squares_identity_rows
        )

    class FdKernelsAPI:
        axis_loop = staticmethod(_fd_kernels.axis_loop)
        hessian2_loop = staticmethod(_fd_kernels.hessian2_loop)
        points_loop = staticmethod(_fd_kernels.points_loop)
        complex_loop = staticmethod(_fd_kernels.complex_loop)
        relative_steps = staticmethod(_fd_kernels.relative_steps)
        axis_default = staticmethod(_fd_kernels.axis_default)
        axis_stack = staticmethod(_fd_kernels.axis_stack)
        axis_combine = staticmethod(_fd_kernels.axis_combine)


@overload
def kernels(name: Literal["_kernels"]) -> KernelsAPI: ...
@overload
def kernels(name: Literal["_qf_kernels"]) -> QfKernelsAPI: ...
@overload
def kernels(name: Literal["_fd_kernels"]) -> FdKernelsAPI: ...
def kernels(name: str) -> Any:
    """Return the compiled module ``vcalc.<name>`` (only called on the cython backend)."""
    return _ext[name]


_default = "cython" if HAVE_EXTENSION else "numpy"


class _Local(threading.local):
    """Per-thread state: the stack of :func:`use_backend` overrides."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.threads: list[int] = []


_local = _Local()


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a str, one of {BACKENDS}; got {type(name).__name__}.")
    if name not in BACKENDS:
        raise ValueError(f"`name` must be one of {BACKENDS}; got {name!r}.")
    if name == "cython" and not HAVE_EXTENSION:
        raise RuntimeError(
            f"the 'cython' backend is unavailable: the extension failed to import ({_ext_error})."
        )
    return name


def get_backend() -> str:
    """Return the backend in force for the calling thread.

    Returns
    -------
    str
        ``"cython"`` or ``"numpy"``: the innermost :func:`use_backend` of this
        thread if there is one, else the process-wide default.

    Examples
    --------
    >>> import vcalc
    >>> vcalc.get_backend() in ("cython", "numpy")
    True
    """
    stack = _local.stack
    return stack[-1] if stack else _default


def set_backend(name: str) -> None:
    """Set the process-wide default backend.

    Parameters
    ----------
    name : {"cython", "numpy"}
        ``"cython"`` runs the compiled kernels, ``"numpy"`` the plain NumPy
        reference implementation (:mod:`vcalc.reference`).

    Raises
    ------
    TypeError
        If `name` is not a string.
    ValueError
        If `name` is not one of the backend names.
    RuntimeError
        If ``"cython"`` is asked for but the extension did not import.

    Notes
    -----
    This is global: it changes the default for every thread that is not
    inside a :func:`use_backend` block.  Prefer :func:`use_backend` in
    library code and in threads.

    Examples
    --------
    >>> import vcalc
    >>> before = vcalc.get_backend()
    >>> vcalc.set_backend("numpy")
    >>> vcalc.get_backend()
    'numpy'
    >>> vcalc.set_backend(before)
    """
    global _default
    _default = _check_name(name)


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Use a backend in the current thread for the duration of a ``with`` block.

    Parameters
    ----------
    name : {"cython", "numpy"}
        Backend to use inside the block.

    Yields
    ------
    str
        The backend name.

    Notes
    -----
    The override is thread-local: other threads keep their own backend, so
    concurrent ``use_backend`` blocks never race.  Blocks nest, and the
    previous backend is restored on exit even when the block raises.

    Examples
    --------
    >>> import vcalc
    >>> with vcalc.use_backend("numpy"):
    ...     print(vcalc.get_backend())
    numpy
    """
    name = _check_name(name)
    stack = _local.stack
    stack.append(name)
    try:
        yield name
    finally:
        stack.pop()


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _thread_cap() -> int:
    """The most threads a kernel may use: the CPUs available, and OMP_NUM_THREADS if set."""
    cap = _cpu_count()
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        cap = min(cap, int(env))
    return cap


_num_threads_default = 1


def _check_threads(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"`n` must be a positive int; got {type(n).__name__}.")
    if n < 1:
        raise ValueError(f"`n` must be a positive int (number of threads); got {n}.")
    return int(n)


def get_num_threads() -> int:
    """Return the number of threads vcalc's kernels may use in the calling thread.

    Returns
    -------
    int
        The innermost :func:`num_threads` of this thread if there is one,
        else the process-wide value of :func:`set_num_threads` (default 1).

    Examples
    --------
    >>> import vcalc
    >>> vcalc.get_num_threads()
    1
    """
    stack = _local.threads
    return stack[-1] if stack else _num_threads_default


def set_num_threads(n: int) -> None:
    """Set the process-wide number of threads the kernels may use (default 1).

    Parameters
    ----------
    n : int
        At least 1.  Values above the CPUs available to the process (and
        above ``OMP_NUM_THREADS`` when that is set) are capped when a kernel
        runs.

    Raises
    ------
    TypeError
        If `n` is not an int.
    ValueError
        If `n` is less than 1.

    Notes
    -----
    This is global, like :func:`set_backend`: it changes the default of every
    thread not inside a :func:`num_threads` block.  Kernels split their rows
    over threads (OpenMP, static schedule) only when each thread gets enough
    work (about 64k elements): small calls stay serial.  Which kernels are
    threaded: ``logsumexp`` (unweighted), ``softmax``, ``log_softmax`` and
    the quadratic forms with a shared matrix of size n < 16.  Without OpenMP
    at build time (see :func:`show_config`) everything runs on one thread,
    and so does a child process forked after this one used threads (GNU
    OpenMP would hang there; ``multiprocessing`` forks by default on Linux).

    Examples
    --------
    >>> import vcalc
    >>> vcalc.set_num_threads(2)
    >>> vcalc.get_num_threads()
    2
    >>> vcalc.set_num_threads(1)
    """
    global _num_threads_default
    _num_threads_default = _check_threads(n)


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[int]:
    """Let the kernels use `n` threads in the current thread, inside a ``with`` block.

    Parameters
    ----------
    n : int
        At least 1 (see :func:`set_num_threads`).

    Yields
    ------
    int
        `n`.

    Notes
    -----
    Thread-local, like :func:`use_backend`: other threads keep their own
    setting; blocks nest and the previous value is restored on exit.

    Examples
    --------
    >>> import numpy as np
    >>> import vcalc
    >>> with vcalc.num_threads(2):
    ...     s = vcalc.softmax(np.zeros((4, 3)), axis=-1)
    >>> vcalc.get_num_threads()
    1
    """
    n = _check_threads(n)
    stack = _local.threads
    stack.append(n)
    try:
        yield n
    finally:
        stack.pop()


# GNU OpenMP cannot run a parallel region in a child process forked after
# the parent ran one: the child hangs.  So a fork child of a process whose
# kernels may have used threads runs them on one thread (multiprocessing's
# default start method on Linux is fork).
_omp_used = False
_omp_unusable = False


def _after_fork_in_child() -> None:
    global _omp_unusable
    if _omp_used:
        _omp_unusable = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def threads_for_kernel() -> int:
    """The thread count to pass to a kernel: the setting, capped by the CPUs."""
    global _omp_used
    stack = _local.threads
    n = stack[-1] if stack else _num_threads_default
    if n == 1 or _omp_unusable:
        return 1
    _omp_used = True
    return min(n, _thread_cap())


def config() -> dict[str, Any]:
    """Return the facts that :func:`show_config` prints, as a dict."""
    from vcalc import __version__

    info: dict[str, Any] = {
        "version": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "backend": get_backend(),
        "extension": HAVE_EXTENSION,
    }
    if HAVE_EXTENSION:
        info.update(_ext["_kernels"].build_info())
    else:
        info["extension_error"] = _ext_error
    info["num_threads"] = get_num_threads()
    info["max_threads"] = _thread_cap()
    if info.get("openmp"):
        info["omp_wait_policy"] = _WAIT_POLICY
    return info


def show_config() -> None:
    """Print how vcalc was built and what it will run.

    Prints the version, the backend in force, whether the compiled extension
    is present, the compiler and flags it was built with, the SIMD baseline
    the compiler targeted, the kernel path chosen at run time for this CPU
    (``simd``; ``VCALC_SIMD=base|avx2`` in the environment caps it), whether
    OpenMP was available, and the thread settings.

    Examples
    --------
    >>> import vcalc
    >>> vcalc.show_config()  # doctest: +ELLIPSIS
    vcalc ...
    """
    info = config()
    print(f"vcalc {info['version']}")
    width = max(len(k) for k in info)
    for key, value in info.items():
        if key == "version":
            continue
        print(f"  {key:<{width}} : {value}")
