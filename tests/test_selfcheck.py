"""`python -m vcalc`: configuration, a line per function, exit status."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vcalc
from vcalc import __main__ as cli
from vcalc import _selfcheck
from vcalc._registry import REGISTRY, Entry


def test_module_runs_and_reports_every_function():
    proc = subprocess.run(
        [sys.executable, "-m", "vcalc"], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"vcalc {vcalc.__version__}")
    for name in REGISTRY:
        line = next(ln for ln in proc.stdout.splitlines() if ln.strip().startswith(name + " "))
        assert line.rstrip().endswith("ok"), line
        assert "max rel error" in line
    assert f"PASS: all {len(REGISTRY)} functions match the reference." in proc.stdout


def test_a_wrong_kernel_fails_the_check(capsys):
    good = REGISTRY["softmax"]
    broken = Entry(
        "softmax", lambda x, axis=None: good.func(x, axis=axis) * (1 + 1e-9), good.ref, good.cases
    )
    assert not _selfcheck.run(seed=3, entries=[broken])
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "FAIL: 1 of 1" in out


def test_exit_status_is_1_on_mismatch(monkeypatch, capsys):
    monkeypatch.setattr(_selfcheck, "run", lambda seed: False)
    assert cli.main([]) == 1
    monkeypatch.setattr(_selfcheck, "run", lambda seed: True)
    assert cli.main(["--seed", "5"]) == 0
    assert capsys.readouterr().out.startswith("vcalc ")


def test_show_config_reports_build(capsys):
    vcalc.show_config()
    out = capsys.readouterr().out
    for key in ("backend", "extension", "compiler", "build_flags", "simd", "openmp", "threads"):
        assert key in out
    assert "-O3" in out or "debug" in out
    assert np.__version__ in out


def test_console_script_is_installed():
    # `pip install .` puts a `vcalc` command beside the interpreter.
    script = Path(sys.executable).parent / "vcalc"
    if not script.exists():
        pytest.skip("vcalc is not installed as a package here (source-tree run)")
    proc = subprocess.run(
        [str(script), "--seed", "2"], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS: all" in proc.stdout
