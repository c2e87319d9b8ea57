"""Backend selection: default, set/use, threads, and the fallback without the extension."""

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import vcalc


def test_default_backend_is_cython_when_compiled():
    assert vcalc.get_backend() == "cython"


def test_set_backend_is_global_and_restorable():
    vcalc.set_backend("numpy")
    try:
        assert vcalc.get_backend() == "numpy"
        seen = []
        t = threading.Thread(target=lambda: seen.append(vcalc.get_backend()))
        t.start()
        t.join()
        assert seen == ["numpy"]
    finally:
        vcalc.set_backend("cython")
    assert vcalc.get_backend() == "cython"


def test_use_backend_nests_and_restores_on_error():
    with vcalc.use_backend("numpy"):
        with vcalc.use_backend("cython"):
            assert vcalc.get_backend() == "cython"
        assert vcalc.get_backend() == "numpy"
        with pytest.raises(ZeroDivisionError), vcalc.use_backend("cython"):
            1 / 0  # noqa: B018
        assert vcalc.get_backend() == "numpy"
    assert vcalc.get_backend() == "cython"


def test_use_backend_is_thread_local():
    barrier = threading.Barrier(8)
    seen = {}

    def work(i):
        name = ("cython", "numpy")[i % 2]
        with vcalc.use_backend(name):
            barrier.wait()  # every thread is inside its block at once
            seen[i] = [vcalc.get_backend() for _ in range(200)]
            seen[i].append(float(vcalc.logsumexp(np.arange(5.0))))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, got in seen.items():
        assert set(got[:-1]) == {("cython", "numpy")[i % 2]}
        assert got[-1] == pytest.approx(np.log(np.exp(np.arange(5.0)).sum()), rel=1e-15)


def test_backend_names_are_checked():
    with pytest.raises(
        ValueError, match=r"`name` must be one of \('cython', 'numpy'\); got 'torch'"
    ):
        vcalc.set_backend("torch")
    with pytest.raises(TypeError, match="`name` must be a str"):
        with vcalc.use_backend(1):
            pass


def test_numpy_backend_runs_the_reference(monkeypatch):
    from vcalc import _ref_reductions

    calls = []
    real = _ref_reductions.softmax
    monkeypatch.setattr(
        _ref_reductions, "softmax", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    with vcalc.use_backend("numpy"):
        vcalc.softmax([1.0, 2.0])
    with vcalc.use_backend("cython"):
        vcalc.softmax([1.0, 2.0])
    assert calls == [1]


def test_without_the_extension_vcalc_warns_once_and_works():
    # Block the compiled modules at import, as on a machine where they did not build.
    script = textwrap.dedent(
        """
        import importlib.abc, sys, warnings
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name in ("vcalc._kernels", "vcalc._qf_kernels"):
                    raise ImportError("blocked for the test")
        sys.meta_path.insert(0, Block())
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            import vcalc
            import numpy as np
            assert vcalc.get_backend() == "numpy"
            out = vcalc.softmax([0.0, 0.0])
            assert np.allclose(out, 0.5)
            assert np.isclose(vcalc.quadratic_form(np.eye(2), [1.0, 2.0]), 5.0)
        msgs = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
        assert len(msgs) == 1, msgs
        assert "blocked for the test" in msgs[0]
        try:
            vcalc.set_backend("cython")
        except RuntimeError as err:
            assert "unavailable" in str(err)
        else:
            raise AssertionError("set_backend('cython') should fail")
        from vcalc import reference
        assert np.isclose(reference.logsumexp([0.0, 0.0]), np.log(2))
        from vcalc import __main__
        assert __main__.main([]) == 1
        print("fallback ok")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "fallback ok" in proc.stdout
    assert "FAIL: the compiled extension is not available" in proc.stdout
