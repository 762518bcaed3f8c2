"""Ctrl-C: a command stops with exit status 130 (128 + SIGINT), one line, no traceback, and
leaves nothing half-written; running it again resumes."""

import os
import signal
import subprocess
import sys
import time

from eyeedit.data.samples import sample_images
from eyeedit.imageio import write_image


def test_ctrl_c_exits_130_and_a_rerun_resumes(tmp_path):
    faces = tmp_path / "faces"
    astronaut = sample_images()["astronaut"]
    for i in range(40):
        write_image(faces / f"f{i:02d}.png", astronaut)
    out = tmp_path / "pairs"
    cmd = [sys.executable, "-m", "eyeedit", "synth", str(faces), str(out), "--effect", "makeup", "--workers", "2"]
    # A session of its own, so that Ctrl-C reaches the whole group (the pool workers too), as
    # a terminal delivers it.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    manifest = out / "manifest.jsonl"
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.exists() and len(manifest.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Interrupted. The same command again resumes where it stopped." in err and "Traceback" not in err
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    done = len(manifest.read_text().splitlines())
    assert 2 <= done < 40
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{done} records done earlier" in rerun.stderr
    assert len(manifest.read_text().splitlines()) == 40
