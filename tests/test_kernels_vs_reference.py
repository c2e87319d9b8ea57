"""The registry sweep: every public function, Cython kernel against NumPy reference."""

import inspect

import numpy as np
import pytest

import vcalc
from vcalc import _selfcheck, reference
from vcalc._registry import REGISTRY

NUMERIC = [n for n in vcalc.__all__ if n in REGISTRY or n in reference.__all__]


def test_every_public_function_is_registered():
    # A function cannot ship without its fast-vs-reference check.
    assert set(reference.__all__) == set(REGISTRY)
    helpers = {"__version__", "get_backend", "set_backend", "use_backend", "show_config"}
    helpers |= {"get_num_threads", "set_num_threads", "num_threads"}
    helpers |= {"DiffInfo", "GradCheck", "Taylor"}  # result classes
    assert set(vcalc.__all__) - helpers == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_reference_has_the_public_signature(name):
    entry = REGISTRY[name]
    assert inspect.signature(entry.ref) == inspect.signature(getattr(vcalc, name))
    assert entry.func is getattr(vcalc, name)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_kernel_matches_reference_on_registry_cases(name):
    report = _selfcheck.check_entry(REGISTRY[name], np.random.default_rng(7))
    assert report.cases > 0
    assert report.ok, "\n".join(report.failures)


@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax", "softmax_jacobian"])
def test_reduction_kernels_match_reference_on_the_zoo(zoo, name):
    for label, a in zoo:
        if name == "softmax_jacobian" and a.ndim == 0:
            continue
        kwargs = {"axis": -1} if a.ndim else {}
        with vcalc.use_backend("numpy"):
            want = getattr(vcalc, name)(a, **kwargs)
        with vcalc.use_backend("cython"):
            got = getattr(vcalc, name)(a, **kwargs)
        err, problems = _selfcheck.compare(got, want)
        assert not problems, (label, problems)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_both_backends_raise_or_neither(name):
    # A sample of bad arguments: the same exception type on both backends.
    entry = REGISTRY[name]
    case = next(entry.cases(np.random.default_rng(1)))
    bad_calls = [
        (("text",) + case.args[1:], case.kwargs),
        ((np.array([1 + 2j, 3j]),) + case.args[1:], case.kwargs),
        ((None,) + case.args[1:], case.kwargs),
    ]
    for args, kwargs in bad_calls:
        outcomes = []
        for backend in ("cython", "numpy"):
            with vcalc.use_backend(backend):
                try:
                    entry.func(*args, **kwargs)
                    outcomes.append(None)
                except Exception as err:  # noqa: BLE001 - we compare the types
                    outcomes.append(type(err))
        assert outcomes[0] is outcomes[1] is not None, outcomes


# ---------------------------------------------------------------------------
# The comparison itself must catch what it is there to catch
# ---------------------------------------------------------------------------


def test_compare_flags_value_dtype_shape_and_nan_mismatches():
    a = np.array([1.0, 2.0, np.nan])
    assert _selfcheck.compare(a, a.copy()) == (0.0, [])
    err, problems = _selfcheck.compare(a * (1 + 1e-9), a)
    assert err == pytest.approx(1e-9, rel=1e-3) and problems
    assert _selfcheck.compare(a.astype(np.float32), a)[1]
    assert _selfcheck.compare(a[:2], a)[1]
    assert _selfcheck.compare(np.array([1.0, 2.0, 3.0]), a)[1]
    assert _selfcheck.compare(np.array([np.inf]), np.array([-np.inf]))[1]
    assert _selfcheck.compare(np.float64(1.0), np.array(1.0))[1]
    # Errors measured against a scale tolerate cancellation, not garbage.
    assert not _selfcheck.compare(np.array([1e-20]), np.array([0.0]), np.array([1.0]))[1]
    assert _selfcheck.compare(np.array([1e-3]), np.array([0.0]), np.array([1.0]))[1]
