"""Speed of `eyeedit serve` as a visitor sees it, in headless Chromium (Playwright).

    python scripts/bench_serve.py                         # photo and webcam figures
    python scripts/bench_serve.py --screenshot docs/gallery/serve.png

Photo: a 1920x1080 JPEG with one face (the sample face scaled to the frame's height) is dropped
on a freshly loaded page; the figure is the time from handing the file to the page until the
edited preview has loaded, beside the server's own time for that photo (shown in the page).
Webcam: Chromium's fake camera plays a 640x480 clip of the sample face drifting; the figure is
edited frames drawn per second in the page over --seconds. The server runs as
`python -m eyeedit serve` on a free local port; Chromium is Debian's (--chromium to change).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from playwright.sync_api import Page, sync_playwright

from eyeedit.data.samples import astronaut, moving_face_video, write_y4m
from eyeedit.imageio import write_image
from eyeedit.training.runtime import processor_name


def hd_photo() -> np.ndarray:
    """(1080, 1920, 3): the sample face scaled to the frame's height on a grey background."""
    face = cv2.resize(astronaut(), (1080, 1080), interpolation=cv2.INTER_CUBIC)
    photo = np.full((1080, 1920, 3), 128, np.uint8)
    photo[:, 420:1500] = face
    return photo


def start_server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "eyeedit", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    sys.exit("eyeedit serve did not start")


def time_photo(page: Page, url: str, photo: Path) -> tuple[float, float]:
    """(ms from handing the file to the page until the edited preview is shown, server ms)."""
    page.goto(url)
    page.locator("#photos input[type=file]").wait_for(state="attached")
    t0 = time.perf_counter()
    page.locator("#photos input[type=file]").set_input_files(str(photo))
    page.wait_for_function("() => { const i = document.querySelector('#after img');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=60_000)
    shown = (time.perf_counter() - t0) * 1000
    report = page.locator("#report").inner_text()
    server = float(re.search(r"in (\d+) ms on the server", report).group(1))
    print(f"  {shown:4.0f} ms shown; {re.search(r'ms: (.*)', report).group(1)}", flush=True)
    return shown, server


def webcam_fps(page: Page, url: str, seconds: float) -> tuple[float, float, str]:
    """(edited frames drawn per second over ``seconds`` after a warm-up, camera frames per
    second over the same time, the page's own line)."""
    page.goto(url)
    page.get_by_role("tab", name="Webcam").click()
    page.locator("#webcam-start").click()
    page.wait_for_function("() => window.eyeeditWebcam.frames() > 0", timeout=60_000)
    page.wait_for_timeout(3000)
    counts = "() => [window.eyeeditWebcam.frames(), window.eyeeditWebcam.cameraFrames()]"
    (f0, c0), t0 = page.evaluate(counts), time.perf_counter()
    page.wait_for_timeout(seconds * 1000)
    (f1, c1), t1 = page.evaluate(counts), time.perf_counter()
    line = page.locator("#webcam-fps").inner_text()
    page.locator("#webcam-stop").click()
    return (f1 - f0) / (t1 - t0), (c1 - c0) / (t1 - t0), line


def screenshot(page: Page, url: str, photo: Path, target: Path) -> None:
    """The page after an edit (the comparison slider's handle across the face), as a small PNG."""
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(url)
    page.locator("#photos input[type=file]").set_input_files(str(photo))
    page.locator("#after img").wait_for()
    page.wait_for_timeout(1000)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "page.png"
        page.screenshot(path=str(raw))
        with Image.open(raw) as img:
            small = img.convert("RGB").resize((960, 750), Image.LANCZOS).quantize(256)
            target.parent.mkdir(parents=True, exist_ok=True)
            small.save(target, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="photo uploads timed")
    parser.add_argument("--seconds", type=float, default=10.0, help="webcam frames counted over this time")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--screenshot", type=Path, default=None, help="also save the page after an edit")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory() as tmp:
        frames, _ = moving_face_video(astronaut(), 60, (640, 480), motion=0.5)
        clip = write_y4m(Path(tmp) / "clip.y4m", frames)
        photos = [write_image(Path(tmp) / f"photo{i}.jpg", hd_photo()) for i in range(args.repeats + 1)]
        server = start_server(port)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=[
                    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                    f"--use-file-for-fake-video-capture={clip}"])
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                time_photo(page, url, photos[0])  # warm-up: the first edit builds caches
                times = [time_photo(page, url, photo) for photo in photos[1:]]
                fps, camera_fps, line = webcam_fps(page, url, args.seconds)
                if args.screenshot:
                    sample = write_image(Path(tmp) / "astronaut.png", astronaut())
                    screenshot(page, url, sample, args.screenshot)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    shown, server_ms = [t[0] for t in times], [t[1] for t in times]
    print(f"{processor_name()}, {len(os.sched_getaffinity(0))} CPUs, "
          f"{datetime.date.today().isoformat()}")
    print(f"photo 1920x1080, one face: shown {statistics.median(shown):.0f} ms after the upload "
          f"(median of {len(shown)}, {min(shown):.0f}-{max(shown):.0f}); server "
          f"{statistics.median(server_ms):.0f} ms ({min(server_ms):.0f}-{max(server_ms):.0f})")
    print(f"webcam 640x480: {fps:.1f} edited FPS drawn in the page over {args.seconds:g} s "
          f"(camera {camera_fps:.1f} FPS); page: {line}")


if __name__ == "__main__":
    main()
