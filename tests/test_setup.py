"""The Makefile picks a Python MediaPipe 0.10.21 supports, or says in one line why it cannot."""

import shutil
import subprocess
from pathlib import Path

import pytest

MAKEFILE = Path(__file__).resolve().parents[1] / "Makefile"


@pytest.fixture
def project(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shutil.copy(MAKEFILE, tmp_path / "Makefile")
    return tmp_path


def _make(folder, env_path, *args):
    return subprocess.run([shutil.which("make"), "-n", ".venv/bin/python", *args], cwd=folder, capture_output=True,
                          text=True, env={"PATH": env_path})


def test_picks_the_first_supported_python_found(project, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for version, minor in (("3.13", 13), ("3.12", 12), ("3.11", 11)):
        fake = bin_dir / f"python{version}"
        fake.write_text(f"#!/bin/sh\necho {bin_dir}/python{version}\n")
        fake.chmod(0o755)
    res = _make(project, f"{bin_dir}:/usr/bin:/bin")
    assert res.returncode == 0, res.stderr
    assert f"{bin_dir}/python3.12 -m venv .venv" in res.stdout  # 3.13 is not among the supported


def test_none_found_says_which_versions_work(project, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    sh = shutil.which("sh")
    (empty / "sh").symlink_to(sh)
    res = subprocess.run([shutil.which("make"), ".venv/bin/python"], cwd=project, capture_output=True, text=True,
                         env={"PATH": str(empty)})
    assert res.returncode != 0
    assert "eyeedit needs Python 3.10, 3.11 or 3.12" in res.stderr and "MediaPipe 0.10.21" in res.stderr
    assert not (project / ".venv").exists()


def test_python_override_is_used(project):
    res = _make(project, "/usr/bin:/bin", "PYTHON=/opt/my/python3.11")
    assert "/opt/my/python3.11 -m venv .venv" in res.stdout
