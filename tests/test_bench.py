"""``python -m vcalc bench``: the checks before timing, and the printed ratio tables."""

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest

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


def _only(monkeypatch, builder):
    """Make `builder` (rng -> cases) the only source of cases of `_bench.run`."""
    for name in _bench._BUILDERS:
        monkeypatch.setattr(_bench, name, lambda rng: [])
    monkeypatch.setattr(_bench, _bench._BUILDERS[0], builder)


def _column(text, label, head):
    """The cell of column `head` in the row starting with `label` (times are 2 tokens)."""
    lines = text.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith(label + " "))
    header = next(line for line in reversed(lines[:row]) if line.startswith("case"))
    cells = lines[row][len(label) :].split()
    cells[0:2] = [" ".join(cells[0:2])]  # "1.2 us"
    return cells[header.split()[1:].index(head)]


def test_run_prints_one_table_per_family(monkeypatch):
    def cases(rng):
        more = _tiny_cases(rng) + _tiny_cases(rng)
        more[1].label = "3x5 again"
        other = _bench.Case("other", "o", {"vcalc": lambda: np.ones(2)}, np.ones(2))
        return more + [other]

    _only(monkeypatch, cases)
    out = io.StringIO()
    assert _bench.run(quick=True, file=out)
    text = out.getvalue()
    assert text.count("(median time per call") == 2
    assert "\nexp  (median" in text and "\nother  (median" in text
    assert "3x5 again" in text
    assert "twice/vcalc" in text and "vcalc/limit" in text
    ratio = float(_column(text, "3x5", "twice/vcalc"))  # the same computation
    assert 0.2 < ratio < 5.0
    assert _column(text, "3x5", "vcalc").endswith(" us")


def test_run_prints_the_machine_facts_first(monkeypatch):
    _only(monkeypatch, _tiny_cases)
    out = io.StringIO()
    _bench.run(quick=True, file=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("CPU: ") and "cores" in lines[0]
    assert any(
        line.startswith("vcalc ") and ("simd path" in line or "missing" in line)
        for line in lines[:6]
    )
    assert any(
        f"numpy {np.__version__}" in line and "scipy" in line and "torch" in line
        for line in lines[:6]
    )
    assert any("BLAS threads are whatever NumPy's BLAS uses" in line for line in lines[:7])


def test_bench_command_exits_1_on_a_mismatch(monkeypatch, capsys):
    def bad_cases(rng):
        cases = _tiny_cases(rng)
        cases[0].impls["vcalc"] = lambda: np.zeros((3, 5))
        return cases

    _only(monkeypatch, bad_cases)
    assert __main__.main(["bench"]) == 1
    assert "MISMATCH exp 3x5: vcalc" in capsys.readouterr().out


def test_relative_check_holds_every_entry_to_its_own_size():
    want = np.array([1e-300, 1.0, 1e300, 0.0, np.inf])
    near = want * (1 + 3e-16)
    assert _bench._close(near, want, 4e-16, relative=True)
    off_small = want.copy()
    off_small[0] *= 1 + 1e-15  # invisible next to 1e300, but not relative to itself
    assert _bench._close(off_small[:4], want[:4], 4e-16)
    assert not _bench._close(off_small, want, 4e-16, relative=True)
    not_zero = want.copy()
    not_zero[3] = 1e-320
    assert not _bench._close(not_zero, want, 4e-16, relative=True)


def test_check_counts_a_raising_implementation_as_a_mismatch():
    def boom():
        raise ValueError("no")

    case = _bench.Case("f", "x", {"vcalc": lambda: np.ones(2), "peer": boom}, np.ones(2))
    assert _bench._check(case) == ["peer"]


def test_side_implementations_are_checked_against_their_own_result_and_shown_as_extras(
    monkeypatch,
):
    a = np.linspace(0.0, 1.0, 50_000)

    def cases(rng):
        case = _bench.Case(
            "pair",
            "p",
            {"vcalc": lambda: np.exp(a), "half": lambda: np.sqrt(a)},
            lambda: np.exp(a),  # computed when checked
            1e-12,
            expected_of={"half": np.sqrt(a)},
            side={"half"},
            extras={"half/all": ("half", "vcalc")},
            per=("elem", a.size),
        )
        assert _bench._check(case) == []
        wrong = _bench.Case(
            "pair", "w", dict(case.impls), np.exp(a), 1e-12, expected_of={"half": a}, side={"half"}
        )
        assert _bench._check(wrong) == ["half"]
        return [case]

    _only(monkeypatch, cases)
    out = io.StringIO()
    assert _bench.run(quick=True, file=out)
    text = out.getvalue()
    assert "half/vcalc" not in text  # a side implementation is not a peer
    assert float(_column(text, "p", "half/all")) > 0
    ns = float(_column(text, "p", "ns/elem"))
    assert 0 < ns < 1e4


def test_only_runs_the_selected_cases(monkeypatch):
    def cases(rng):
        return [
            _bench.Case("fam", "keep me", {"vcalc": lambda: np.ones(3)}, np.ones(3)),
            _bench.Case("fam", "drop me", {"vcalc": lambda: np.zeros(3)}, np.ones(3)),
        ]

    _only(monkeypatch, cases)
    out = io.StringIO()
    assert _bench.run(quick=True, file=out, only="zzz; KEEP")  # the mismatching case is not run
    assert "keep me" in out.getvalue() and "drop me" not in out.getvalue()


def test_targets_are_measured_from_the_timed_cases(monkeypatch):
    a = np.ones(200_000)

    def cases(rng):
        return [
            _bench.Case(
                "exp",
                "fast",
                {"vcalc": lambda: None, "np.exp": lambda: np.exp(a)},
                None,
                unchecked={"vcalc", "np.exp"},
                limit="np.exp",
                key=("exp", "float64", 1_000_000),
            )
        ]

    _only(monkeypatch, cases)
    out = io.StringIO()
    _bench.run(quick=True, file=out)
    line = next(x for x in out.getvalue().splitlines() if x.startswith("exp float64 n=1000000"))
    assert line.endswith(" ok") and ">= 1.8" in line
    assert "softmax" not in out.getvalue().split("targets")[-1]  # only cases that ran


def test_a_missed_target_shows_the_memory_ceiling_measured_beside_it(monkeypatch):
    a = np.ones(200_000)
    b = np.empty_like(a)

    def cases(rng):
        return [
            _bench.Case(
                "exp",
                "slow",
                {
                    "vcalc": lambda: [np.exp(a) for _ in range(4)],
                    "np.exp": lambda: np.exp(a),
                    "copy": lambda: np.copyto(b, a),
                },
                None,
                unchecked={"vcalc", "np.exp", "copy"},
                limit="np.exp",
                side={"copy"},
                key=("exp", "float64", 1_000_000),
            )
        ]

    _only(monkeypatch, cases)
    out = io.StringIO()
    _bench.run(quick=True, file=out)
    line = next(x for x in out.getvalue().splitlines() if x.startswith("exp float64 n=1000000"))
    assert " MISSED  (memory ceiling np.exp/copy: " in line
    assert float(line.rsplit(": ", 1)[1].rstrip(")")) > 1  # a copy beats np.exp


def test_the_quadratic_floors_write_arrays_of_the_results_sizes():
    """The floor stands for any implementation returning new arrays: same shapes and dtypes."""
    cases = [c for c in _bench._quadratic_cases(np.random.default_rng(0)) if " n=3 " in c.label]
    assert len(cases) == 4  # two families, two dtypes
    for case in cases:
        assert "floor" in case.unchecked and "floor" in case.side
        got = case.impls["floor"]()
        want = case.impls["vcalc"]()
        got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
        assert [(g.shape, g.dtype) for g in got] == [(w.shape, w.dtype) for w in want]


def test_the_real_small_cases_match_the_reference():
    """Every implementation of the 1000-element reductions and of exp passes its check."""
    rng = np.random.default_rng(0)
    small = [c for c in _bench._reduction_cases(rng) if c.label.endswith("(10, 100)")]
    assert len(small) == 6
    exps = [c for c in _bench._exp_cases(rng) if not isinstance(c, str) and "n=1000 " in c.label]
    for case in small + exps:
        assert _bench._check(case) == [], case.label
    assert {"vcalc", "numpy", "np.exp"} <= set(small[0].impls)


def test_report_writes_the_date_command_machine_and_tables(monkeypatch, tmp_path):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "report.py"
    if not path.exists():
        pytest.skip("benchmarks/report.py is not beside these tests")
    spec = importlib.util.spec_from_file_location("vcalc_bench_report", path)
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    _only(monkeypatch, _tiny_cases)
    target = tmp_path / "RESULTS.md"
    assert report.main(["--quick", "--only", "3x5", "--output", str(target)]) == 0
    text = target.read_text()
    assert "`python benchmarks/report.py --quick --only 3x5 --output " in text
    assert "UTC" in text and "**Subset**" in text
    assert "- CPU: " in text
    assert "| simd |" in text or "| extension | False |" in text
    assert "twice/vcalc" in text and text.count("CPU: ") == 1  # facts once, not in the tables
