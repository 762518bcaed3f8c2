"""`eyeedit serve` in a real headless Chromium: photos, bad uploads, the webcam, offline.

One server runs for the module (started as `python -m eyeedit serve` in a subprocess with its
own TMPDIR, so its workspace can be checked), and one Chromium whose fake camera plays a clip
made here from the sample face. The browser tests skip only when Chromium cannot be found.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from badcorpus import _png_header_only
from click.testing import CliRunner
from PIL import Image

from eyeedit.cli.main import cli
from eyeedit.data.samples import astronaut, moving_face_video, write_y4m
from eyeedit.editing.webcam import (
    EffectModels,
    FrameError,
    Settings,
    WebcamSession,
    decode_frame,
    usable_effects,
)
from eyeedit.imageio import write_image
from eyeedit.model.store import ModelError

REPO = Path(__file__).resolve().parents[1]
# The sample face's eyes with a margin: every shipped effect changes pixels only inside it.
EYE_BOX = (slice(60, 150), slice(150, 300))
CLIP_SIZE = (640, 480)


def find_chromium() -> str | None:
    """Debian's chromium (or $EYEEDIT_CHROMIUM); Playwright's own download is not used."""
    candidates = [os.environ.get("EYEEDIT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"]
    return next((shutil.which(c) for c in candidates if c and shutil.which(c)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the command line, without a browser ---------------------------------------------------

def test_help_says_what_the_host_means():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "[default: 127.0.0.1]" in text and "0.0.0.0" in text and "anyone on your network" in text
    assert "--port" in text and "--effect" in text and "pip install 'eyeedit[web]'" in text


def test_missing_web_extra_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now raises ImportError
    monkeypatch.delitem(sys.modules, "eyeedit.web", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--port", str(free_port())])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: the web extra is not installed: pip install 'eyeedit[web]'"


def test_port_in_use_is_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: port {port} is in use; pick another with --port"


def test_unknown_effect_is_one_line():
    result = CliRunner().invoke(cli, ["serve", "--port", str(free_port()), "--effect", "no-such-effect"])
    assert result.exit_code == 1
    assert "unknown effect 'no-such-effect' (available:" in result.output
    assert "Traceback" not in result.output


def jpeg(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def test_each_webcam_visitor_has_their_own_tracks():
    models = EffectModels()
    face_frames, _ = moving_face_video(astronaut(), 3, CLIP_SIZE, noise=0.0)
    empty = np.full((CLIP_SIZE[1], CLIP_SIZE[0], 3), 90, np.uint8)
    a, b = WebcamSession(models, Settings("glasses")), WebcamSession(models, Settings("glasses"))
    try:
        for frame in face_frames:
            out_a, stats_a = a.process(jpeg(frame))
            _, stats_b = b.process(jpeg(empty))
        assert stats_a["faces"] == 1 and stats_b["faces"] == 0
        assert len(a.previewer.tracker.tracks) == 1 and not b.previewer.tracker.tracks
        edited = cv2.imdecode(np.frombuffer(out_a, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        # glasses drawn: many more pixels changed than the two JPEG passes alone change (the
        # share drawn varies a little with timing, which the landmark smoothing follows)
        received = cv2.imdecode(np.frombuffer(jpeg(face_frames[-1]), np.uint8), cv2.IMREAD_COLOR)
        sent_back = cv2.imencode(".jpg", received, [cv2.IMWRITE_JPEG_QUALITY, 85])[1]
        unedited = cv2.imdecode(sent_back, cv2.IMREAD_COLOR)[:, :, ::-1]

        def changed(img: np.ndarray) -> float:
            return float((np.abs(img.astype(int) - face_frames[-1]).max(axis=2) > 40).mean())

        assert changed(edited) > 3 * changed(unedited) and changed(edited) > 0.0005
        a.configure(Settings("blue-eyes", strength=0.5))  # a new effect: new tracks, new options
        assert a.previewer.editor.name == "blue-eyes" and a.previewer.editor.options.strength == 0.5
        assert not a.previewer.tracker.tracks and b.previewer.editor.name == "glasses"
    finally:
        a.close()
        b.close()


def test_webcam_refuses_bad_frames_and_settings():
    with pytest.raises(FrameError, match="not a JPEG or PNG image"):
        decode_frame(b"hello")
    with pytest.raises(FrameError, match="too large"):
        decode_frame(_png_header_only(5000, 5000))
    with pytest.raises(FrameError, match="unknown effect 'nope'"):
        Settings.from_dict({"effect": "nope"}, ["glasses"])
    with pytest.raises(FrameError, match="unknown blend"):
        Settings.from_dict({"effect": "glasses", "blend": "cubist"}, ["glasses"])
    for odd in (float("nan"), float("inf")):  # what json.loads makes of NaN and Infinity
        with pytest.raises(FrameError, match="strength must be a finite number"):
            Settings.from_dict({"effect": "glasses", "strength": odd}, ["glasses"])
    clamped = Settings.from_dict({"effect": "glasses", "strength": 7, "blend": "poisson"}, ["glasses"])
    assert clamped.strength == 1.0 and clamped.options(video=True).blend == "feather"
    assert clamped.options(video=False).blend == "poisson"


def test_a_broken_model_is_left_out_unless_asked_for(tmp_path, monkeypatch, caplog):
    (tmp_path / "makeup.safetensors").write_bytes(b"not a model")  # shadows the shipped makeup
    monkeypatch.setenv("EYEEDIT_MODELS", str(tmp_path))
    effects, default = usable_effects(EffectModels())
    assert "makeup" not in effects and {"glasses", "blue-eyes"} <= set(effects) and default == "glasses"
    assert "left out: " in caplog.text and "makeup.safetensors" in caplog.text
    with pytest.raises(ModelError, match="makeup.safetensors"):
        usable_effects(EffectModels(), "makeup")
    with pytest.raises(ModelError, match="unknown effect 'nope'"):
        usable_effects(EffectModels(), "nope")


# --- the running app -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("Chromium not found: apt-get install chromium, or set EYEEDIT_CHROMIUM")
    return path


@pytest.fixture(scope="module", autouse=True)
def started_server(request, tmp_path_factory):
    """`python -m eyeedit serve` on a free port, started as the module begins when any selected
    test needs it, so that its start-up (imports, models, the sample gallery) overlaps the
    tests without a browser. Its TMPDIR and working folder are ours, to be checked."""
    wanted = any("server" in item.fixturenames for item in request.session.items
                 if item.module is request.module)
    if not wanted or find_chromium() is None:
        yield None
        return
    root = tmp_path_factory.mktemp("serve")
    tmp, cwd, log = root / "tmp", root / "cwd", root / "serve.log"
    tmp.mkdir()
    cwd.mkdir()
    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(REPO)}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "eyeedit", "serve", "--port", str(port)],
                                cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    yield {"url": f"http://127.0.0.1:{port}/", "proc": proc, "tmp": tmp, "cwd": cwd, "port": port,
           "log": log}
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(chromium, started_server):
    wait_until_serving(started_server)
    return started_server


def wait_until_serving(server: dict, timeout: float = 120) -> None:
    proc, deadline = server["proc"], time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"eyeedit serve exited with {proc.returncode}: {server['log'].read_text()}")
        try:
            with urllib.request.urlopen(server["url"], timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail("eyeedit serve did not answer within two minutes")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict:
    """The fake camera's clip: the sample face drifting, its frames and where its eyes are."""
    frames, transforms = moving_face_video(astronaut(), 30, CLIP_SIZE, noise=0.0, motion=0.5)
    path = write_y4m(tmp_path_factory.mktemp("clip") / "face.y4m", frames)
    return {"path": path, "frames": frames, "eye_boxes": [frame_box(m, EYE_BOX) for m in transforms]}


def frame_box(frame_from_image: np.ndarray, box: tuple[slice, slice]) -> tuple[slice, slice]:
    """The bounding box, in a clip frame, of a box of the sample face."""
    rows, cols = box
    corners = np.array([[x, y, 1.0] for x in (cols.start, cols.stop) for y in (rows.start, rows.stop)])
    xs, ys = (corners @ frame_from_image.T).T  # (2, 4)
    return slice(max(int(ys.min()), 0), int(ys.max()) + 1), slice(max(int(xs.min()), 0), int(xs.max()) + 1)


@pytest.fixture(scope="module")
def browser(chromium, clip):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=[
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={clip['path']}"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A fresh visitor; every request the page makes is recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.requests = []
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.on("websocket", lambda ws: pg.requests.append(ws.url))
    pg.goto(server["url"])
    pg.locator("#photos").wait_for()
    yield pg
    context.close()


def assert_all_local(requests: list[str], port: int) -> None:
    """Offline: nothing but the server itself (and in-page data) was asked for."""
    outside = [u for u in requests if not u.startswith((f"http://127.0.0.1:{port}/",
                                                        f"ws://127.0.0.1:{port}/", "data:", "blob:"))]
    assert requests and not outside


def upload(page, *files: Path) -> None:
    page.locator("#photos input[type=file]").set_input_files([str(f) for f in files])


def wait_for_report(page, text: str) -> str:
    page.wait_for_function("t => (document.querySelector('#report') || {}).innerText?.includes(t)",
                           arg=text, timeout=60_000)
    return page.locator("#report").inner_text()


def pick_effect(page, effect: str) -> None:
    page.locator("#effect input").click()
    page.get_by_role("option", name=effect, exact=True).click()


def test_photo_download_is_what_apply_writes(page, server, tmp_path):
    source = write_image(tmp_path / "face.png", astronaut())
    applied = tmp_path / "applied.png"
    cli_apply = subprocess.Popen([sys.executable, "-m", "eyeedit", "apply", str(source), "--effect",
                                  "blue-eyes", "-o", str(applied)], env={**os.environ, "PYTHONPATH": str(REPO)},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    exif = Image.Exif()
    exif[0x0112] = 8  # stored turned a quarter: shown upright, 400 wide and 512 high
    exif[0x010F] = "Test camera maker"  # kept in the download, as apply keeps it
    Image.fromarray(astronaut()[:, 56:456]).rotate(-90, expand=True).save(
        tmp_path / "turned.jpg", exif=exif, quality=95)
    pick_effect(page, "blue-eyes")
    upload(page, source, tmp_path / "turned.jpg")
    report = wait_for_report(page, "turned.jpg: 1 face edited with blue-eyes")
    assert "face.png: 1 face edited with blue-eyes" in report
    assert "face 1 at (224, 124)" in report and ": edited" in report and "ms: read" in report
    page.locator("#after img").wait_for()
    page.locator("#showing input").click()  # two results: show the other one
    page.get_by_role("option", name="turned.jpg", exact=True).click()
    page.wait_for_function("() => document.querySelector('#after img')?.naturalWidth === 400")
    downloaded = download(page, "face_blue-eyes.png", tmp_path)
    with Image.open(download(page, "turned_blue-eyes.jpg", tmp_path)) as img:
        assert img.format == "JPEG" and img.size == (400, 512) and img.getexif().get(0x0112) in (None, 1)
        assert img.getexif().get(0x010F) == "Test camera maker"
    assert cli_apply.wait(timeout=120) == 0

    with Image.open(downloaded) as img:
        assert img.format == "PNG" and img.size == (512, 512)
        got = np.asarray(img.convert("RGB"))
    expected, before = np.asarray(Image.open(applied).convert("RGB")), astronaut()
    outside = np.ones(got.shape[:2], bool)
    outside[EYE_BOX] = False
    assert np.array_equal(got[outside], expected[outside])
    assert np.array_equal(got[outside], before[outside])
    changed = (got[EYE_BOX] != before[EYE_BOX]).any(axis=2)
    assert changed.sum() > 100  # the irises were recoloured
    assert_all_local(page.requests, server["port"])


def download(page, name: str, folder: Path) -> Path:
    """Click a result's download link; returns where the file was saved."""
    with page.expect_download() as info:
        page.locator(f"#downloads a[download='{name}']").click()
    assert info.value.suggested_filename == name
    info.value.save_as(folder / name)
    return folder / name


def test_bad_uploads_get_a_message_and_the_next_upload_works(page, server, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    huge = tmp_path / "huge.png"
    huge.write_bytes(_png_header_only(50000, 50000))
    no_face = write_image(tmp_path / "rocket.jpg", astronaut()[300:, 300:])
    row = np.concatenate([astronaut()[40:260, 130:320]] * 3, axis=1)
    crowd = write_image(tmp_path / "crowd.png", np.concatenate([row, row]))  # six faces
    upload(page, notes, huge, no_face, crowd)
    report = wait_for_report(page, "crowd.png: 4 faces edited")
    assert "notes.txt: not an image" in report
    assert "huge.png: too large" in report
    assert "rocket.jpg: no face found" in report
    assert report.count(": edited") == 4 and report.count("skipped: only the 4 leftmost faces") == 2
    assert "Traceback" not in page.content()

    big = tmp_path / "big.jpg"  # over the upload limit: refused before it is sent
    with open(big, "wb") as fh:
        fh.truncate(26 * 1024 * 1024)
    upload(page, big)
    toast = page.get_by_text("exceed the maximum allowed size")
    toast.wait_for()
    assert '"big.jpg"' in toast.inner_text()

    upload(page, write_image(tmp_path / "face.jpg", astronaut()))
    report = wait_for_report(page, "face.jpg: 1 face edited with glasses")
    assert "notes.txt: not an image" in report  # earlier uploads stay listed
    assert page.locator("#downloads a[download='face_glasses.jpg']").count() == 1
    assert_all_local(page.requests, server["port"])


def test_webcam_frames_come_back_edited(page, server, clip):
    page.get_by_role("tab", name="Webcam").click()
    page.locator("#webcam-start").click()
    page.wait_for_function("() => window.eyeeditWebcam.frames() >= 5", timeout=60_000)
    rate = page.locator("#webcam-fps").inner_text()
    assert "glasses:" in rate and " FPS · 640x480 · 1 face · server " in rate
    assert float(rate.split(":")[1].split("FPS")[0]) > 0
    shown = canvas_pixels(page)
    page.locator("#webcam-stop").click()
    assert f"ws://127.0.0.1:{server['port']}/webcam" in page.requests
    assert shown.shape == (480, 640, 3)
    # The frame shown is one of the clip's, edited: close to one of them away from the eyes (up
    # to JPEG and colour conversions), and far from it where the glasses' frames were drawn.
    frames, boxes = clip["frames"], clip["eye_boxes"]
    away = [np.abs(shown[300:].astype(int) - f[300:]).mean() for f in frames]
    best = int(np.argmin(away))
    changed = np.abs(shown.astype(int) - frames[best]).max(axis=2) > 40
    assert away[best] < 5 and changed[300:].mean() < 0.01
    assert changed[boxes[best]].mean() > 0.02
    assert_all_local(page.requests, server["port"])


def canvas_pixels(page) -> np.ndarray:
    """(H, W, 3) uint8 RGB of the webcam canvas, as drawn (before the page's CSS mirroring)."""
    url = page.evaluate("() => document.getElementById('webcam-canvas').toDataURL('image/png')")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as img:
        return np.asarray(img.convert("RGB"))


def test_a_device_that_is_not_there_is_a_usage_error_before_the_server_starts():
    from click.testing import CliRunner

    from eyeedit.cli.main import cli

    res = CliRunner().invoke(cli, ["serve", "--device", "bogus"])
    assert res.exit_code == 2 and "is not cpu, cuda, cuda:N or mps" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["serve", "--device", "cuda", "--backend", "onnx"])
    assert res.exit_code == 2 and "the onnx backend runs on the CPU" in res.output and "Traceback" not in res.output


def test_the_web_app_edits_as_apply_does_whatever_its_options():
    """The editors the server makes per request keep what the model file says: the glasses
    model's pinned frame colour and the shadow its frames cast, as `Editor.load` reads them."""
    from eyeedit.editing.editor import EditOptions, Editor

    loaded = Editor.load("glasses")
    assert loaded.frame_color == "#141414" and loaded.frame_shadow  # the shipped model pins both
    models = EffectModels()
    served = models.editor("glasses", EditOptions(strength=0.5, blend="laplacian"))
    assert (served.frame_color, served.frame_shadow, served.mask_kind) == \
        (loaded.frame_color, loaded.frame_shadow, loaded.mask_kind)
    assert served.options.strength == 0.5 and served.translate is models.editor("glasses", EditOptions()).translate
    session = WebcamSession(models, Settings("glasses"))
    try:
        session.configure(Settings("glasses", strength=0.4))
        kept = session.previewer.editor
        assert kept.frame_color == loaded.frame_color and kept.options.strength == 0.4
    finally:
        session.close()


def test_each_face_line_says_what_the_editor_did_with_that_face():
    from types import SimpleNamespace

    from eyeedit.editing.editor import EditResult, SkippedFace
    from eyeedit.web import MAX_FACES, face_lines

    found = [SimpleNamespace(center=(10 * i, 5), eye_distance=30 - i) for i in range(MAX_FACES + 1)]
    # the first face is too small; the others up to MAX_FACES are edited; the last is beyond them
    result = EditResult(np.zeros((1, 1, 3), np.uint8), faces=[SimpleNamespace(index=i) for i in range(1, MAX_FACES)],
                        skipped=[SkippedFace(0, "face too small (eyes 30.0 px apart, needs 40)", (0, 0, 1, 1))])
    lines = face_lines(found, result)
    assert len(lines) == MAX_FACES + 1
    assert lines[0].endswith("skipped: face too small (eyes 30.0 px apart, needs 40)")
    assert all(line.endswith(": edited") for line in lines[1:MAX_FACES])
    assert lines[MAX_FACES].endswith(f"only the {MAX_FACES} leftmost faces are edited")


def test_stopping_removes_every_upload(page, server, tmp_path):
    """Last in this module: SIGTERM ends the server cleanly and its workspace goes with it."""
    upload(page, write_image(tmp_path / "last.png", astronaut()))
    wait_for_report(page, "last.png: 1 face edited")
    workspaces = list(server["tmp"].glob("eyeedit-serve-*"))
    assert len(workspaces) == 1 and any(workspaces[0].rglob("last.png"))
    page.close()  # an open page would hold the shutdown for its grace period
    server["proc"].send_signal(signal.SIGTERM)
    assert server["proc"].wait(timeout=30) == 0
    left = sorted(p.relative_to(server["tmp"]).as_posix() for p in server["tmp"].rglob("*"))
    assert not left, left  # uploads and results are gone, nothing else was left
    assert not any(server["cwd"].iterdir())  # nothing written where it was started

