"""``python -m vcalc bench``: the checks before timing, and the printed ratio tables."""

import io

import numpy as np

from vcalc import __main__, _bench


def _tiny_cases(rng):
    a = rng.standard_normal((3, 5))
    want = np.exp(a)
    return [
        _bench.Case(
            "exp",
            "3x5",
            {"vcalc": lambda: np.exp(a), "twice": lambda: np.exp(a), "limit": lambda: None},
            want,
            1e-12,
            {"limit"},
            "limit",
        )
    ]


def test_check_catches_a_peer_that_computes_something_else():
    a = np.linspace(0.0, 1.0, 4)
    case = _bench.Case(
        "f", "x", {"vcalc": lambda: np.exp(a), "wrong": lambda: np.exp(2 * a)}, np.exp(a)
    )
    assert _bench._check(case) == ["wrong"]


def test_check_holds_vcalc_to_the_case_tolerance_and_peers_to_1e4():
    want = np.array([1.0, 2.0])
    case = _bench.Case(
        "f",
        "x",
        {"vcalc": lambda: want * (1 + 1e-6), "peer": lambda: want * (1 + 1e-6)},
        want,
        1e-10,
    )
    assert _bench._check(case) == ["vcalc"]


def test_median_times_are_positive_and_ordered():
    a = np.ones(200_000)
    t = _bench._median_times({"slow": lambda: np.exp(a), "fast": lambda: None}, 0.05)
    assert t["slow"] > t["fast"] > 0


def test_run_prints_one_table_per_family(monkeypatch):
    for name in ("_reduction_cases", "_quadratic_cases", "_fd_cases"):
        monkeypatch.setattr(_bench, name, lambda rng: [])
    monkeypatch.setattr(_bench, "_reduction_cases", _tiny_cases)
    out = io.StringIO()
    assert _bench.run(quick=True, file=out)
    text = out.getvalue()
    assert "twice/vcalc" in text and "vcalc/limit" in text
    row = next(line for line in text.splitlines() if line.startswith("3x5"))
    ratio = float(row.split()[-2])  # twice/vcalc: the same computation
    assert 0.2 < ratio < 5.0


def test_bench_command_exits_1_on_a_mismatch(monkeypatch, capsys):
    def bad_cases(rng):
        cases = _tiny_cases(rng)
        cases[0].impls["vcalc"] = lambda: np.zeros((3, 5))
        return cases

    for name in ("_reduction_cases", "_quadratic_cases", "_fd_cases"):
        monkeypatch.setattr(_bench, name, lambda rng: [])
    monkeypatch.setattr(_bench, "_reduction_cases", bad_cases)
    assert __main__.main(["bench"]) == 1
    assert "MISMATCH exp 3x5: vcalc" in capsys.readouterr().out
