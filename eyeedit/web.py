"""The web app behind `eyeedit serve`: photos and a webcam edited in the browser.

The page is a Gradio app; photos go through the same reader, editor and writer as `apply`, so a
download is the file `apply` would write. The webcam does not use Gradio's own streaming, which
sends one frame at a time through its event queue (about 8 FPS on 2 cores with nothing to
edit): the page sends camera frames over a WebSocket with two in flight, and each visitor's
frames go through their own tracker and smoothing (:mod:`eyeedit.editing.webcam`).

Nothing is fetched from the internet at run time: system fonts, no analytics, no share link,
and every upload and result lives in one temporary folder that is removed on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import shutil
import signal
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import gradio as gr
import numpy as np
import onnxruntime
import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from eyeedit.data.samples import astronaut
from eyeedit.demo import face_box
from eyeedit.editing.batch import edited_name
from eyeedit.editing.blending import BLEND_MODES
from eyeedit.editing.editor import EditOptions, EditResult
from eyeedit.editing.webcam import (
    EffectModels,
    FrameError,
    Settings,
    WebcamSession,
    usable_effects,
)
from eyeedit.imageio import IMAGE_SUFFIXES, ImageError, read_photo, write_image
from eyeedit.landmarks import FaceMeshDetector
from eyeedit.viz import fit_height

log = logging.getLogger(__name__)

WEBCAM_JS = Path(__file__).with_name("webcam.js")
MAX_FACES = 4  # faces edited per photo (the leftmost), so that a crowd does not stall the page
DETECT_FACES = 8  # faces looked for, so that the page can say which ones were skipped
PREVIEW_SIDE = 1280  # longest side of the before/after previews; the download is full size
MAX_WEBCAMS = 4  # cameras streamed at once; each costs about a core at 640x480
RESULTS_TTL_S = 3600  # results older than this are removed while the server runs
CACHED_RESULTS = 64  # photo results kept for reuse when the same upload is edited again
THEME = gr.themes.Default(primary_hue="indigo", font=["system-ui", "sans-serif"],
                          font_mono=["ui-monospace", "monospace"])
CSS = """
.report p, .report ul { margin: 0 0 4px 0; }
.report .ok { font-weight: 600; }
.report .bad { font-weight: 600; color: var(--error-text-color); }
.report .stages, .report .total { color: var(--body-text-color-subdued); font-size: 0.85em; }
#webcam-view { display: flex; gap: 8px; flex-wrap: wrap; }
#webcam-view figure { margin: 0; }
#webcam-view figcaption { color: var(--body-text-color-subdued); font-size: 0.85em; }
#webcam-view video, #webcam-view canvas { width: min(480px, 100%); background: #222;
  transform: scaleX(-1); border-radius: 6px; }
#webcam-fps { font-variant-numeric: tabular-nums; }
"""


@dataclass(frozen=True)
class ServeConfig:
    """How `eyeedit serve` runs."""

    host: str = "127.0.0.1"
    port: int = 7860
    effect: str | None = None  # selected when the page opens; None = glasses or the first found
    max_upload_mb: float = 25.0
    max_megapixels: float = 40.0
    backend: str = "auto"
    device: str = "cpu"


@dataclass
class PhotoReport:
    """What happened to one uploaded photo, for the page."""

    name: str  # the file name as uploaded
    status: str  # edited | no-face | no-editable-face | unreadable | failed
    message: str  # one line: what was done, or why not
    faces: list[str] = field(default_factory=list)  # one line per face found
    timings_ms: dict[str, float] = field(default_factory=dict)
    before: Path | None = None  # preview JPEG (EXIF orientation applied)
    after: Path | None = None
    download: Path | None = None  # the result in the input's format and size

    @property
    def total_ms(self) -> float:
        return sum(self.timings_ms.values())


class PhotoEditor:
    """Edits uploaded photos one at a time with a shared still-image Face Mesh."""

    def __init__(self, models: EffectModels, max_pixels: int):
        self.models = models
        self.max_pixels = max_pixels
        self.detector = FaceMeshDetector(max_faces=DETECT_FACES, video=False)
        self._lock = threading.Lock()  # Face Mesh is not thread-safe

    def edit(self, source: Path, name: str, settings: Settings, out_dir: Path) -> PhotoReport:
        """Read, edit and write one photo; never raises for a bad input."""
        with self._lock:
            try:
                return self._edit(source, name, settings, out_dir)
            except Exception:  # noqa: BLE001 - one photo's bug must not stop the server or the batch
                log.exception("editing %s failed", name)
                return PhotoReport(name, "failed", f"{name}: could not be edited (an internal error, "
                                   "logged by the server)")

    def _edit(self, source: Path, name: str, settings: Settings, out_dir: Path) -> PhotoReport:
        ms: dict[str, float] = {}
        t0 = time.perf_counter()
        try:
            image, info = read_photo(source, max_pixels=self.max_pixels)
        except ImageError as exc:  # its reason never names the server's temporary path
            return PhotoReport(name, "unreadable", f"{name}: {exc.reason}")
        ms["read"] = (time.perf_counter() - t0) * 1000
        editor = self.models.editor(settings.effect, settings.options(video=False))
        t0 = time.perf_counter()
        found = self.detector.detect(image)
        ms["detect"] = (time.perf_counter() - t0) * 1000
        result = editor.run(image, found[:MAX_FACES])
        ms.update((k, v) for k, v in result.timings_ms.items() if k != "detect")
        faces = face_lines(found, result)
        if not found:
            return PhotoReport(name, "no-face", f"{name}: no face found", faces, ms)
        if not result.faces:  # found, but each too small or turned too far
            return PhotoReport(name, "no-editable-face", f"{name}: {len(found)} face{'s' * (len(found) > 1)} "
                               "found, none editable (see below)", faces, ms)
        t0 = time.perf_counter()
        try:
            # as `apply` writes it: the photo's format, EXIF (camera, date) and colour profile
            download = write_image(out_dir / output_name(name, editor.name), result.image, like=info)
            before = write_image(out_dir / "before.jpg", preview(image))
            after = write_image(out_dir / "after.jpg", preview(result.image))
        except ImageError as exc:  # e.g. the server's disk is full
            return PhotoReport(name, "failed", f"{name}: the result could not be saved ({exc.reason})",
                               faces, ms)
        ms["write"] = (time.perf_counter() - t0) * 1000
        n = len(result.faces)
        message = f"{name}: {n} face{'s' * (n > 1)} edited with {editor.name}"
        return PhotoReport(name, "edited", message, faces, ms, before, after, download)


def face_lines(found: list, result: EditResult) -> list[str]:
    """One line per face found (left to right): where it is, and whether it was edited or why
    not (too small, turned too far: the editor's own reason; or beyond the leftmost MAX_FACES)."""
    edited = {e.index for e in result.faces}
    reasons = {s.index: s.reason for s in result.skipped}
    lines = []
    for i, face in enumerate(found):
        x, y = (int(v) for v in face.center)
        where = f"face {i + 1} at ({x}, {y}), eyes {face.eye_distance:.0f} px apart"
        if i in edited:
            status = "edited"
        elif i in reasons:
            status = f"skipped: {reasons[i]}"
        else:
            status = f"skipped: only the {MAX_FACES} leftmost faces are edited"
        lines.append(f"{where}: {status}")
    return lines


def output_name(name: str, effect: str) -> str:
    """The download's name, as `apply` names an edit (:func:`edited_name`); PNG when the upload's
    suffix is not an image's."""
    p = Path(name)
    return edited_name(p.name if p.suffix.lower() in IMAGE_SUFFIXES else f"{p.stem}.png", effect)


def preview(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 shrunk so its longest side is at most PREVIEW_SIDE (never enlarged)."""
    h, w = image.shape[:2]
    scale = PREVIEW_SIDE / max(h, w)
    if scale >= 1:
        return image
    # Down to half size bilinear is sharp enough and 7x faster than area averaging (3 vs 21 ms
    # for 1920x1080); below that it would alias.
    interpolation = cv2.INTER_LINEAR if scale >= 0.5 else cv2.INTER_AREA
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=interpolation)


def report_html(reports: list[PhotoReport], seconds: float) -> str:
    """The page's account of an upload: each photo's outcome, its faces and its server time."""
    if not reports:
        return ""
    parts = []
    for r in reports:
        cls = "ok" if r.status == "edited" else "bad"
        took = f" · {r.total_ms:.0f} ms" if r.timings_ms else ""
        parts.append(f"<p class='{cls}'>{html.escape(r.message)}{took}</p>")
        if r.faces:
            parts.append("<ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in r.faces) + "</ul>")
        if r.timings_ms:
            stages = " · ".join(f"{k} {v:.0f}" for k, v in r.timings_ms.items())
            parts.append(f"<p class='stages'>ms: {html.escape(stages)}</p>")
    n = len(reports)
    parts.append(f"<p class='total'>{n} photo{'s' * (n > 1)} in {seconds * 1000:.0f} ms on the server.</p>")
    return f"<div class='report'>{''.join(parts)}</div>"


def sample_gallery(models: EffectModels, effects: list[str],
                   detector: FaceMeshDetector) -> list[tuple[np.ndarray, str]]:
    """The sample face, then each effect on it: what the tool does, before any upload."""
    image = astronaut()
    faces = detector.detect(image)
    if not faces:
        return []
    box = face_box(faces[0])
    tiles = [(fit_height(image[box], 256), "original")]
    for effect in effects:
        edited = models.editor(effect, EditOptions()).run(image, faces[:1]).image
        tiles.append((fit_height(edited[box], 256), effect))
    return tiles


class PhotoHandlers:
    """The page's photo events: edit the uploads, show one result, clear."""

    def __init__(self, photos: PhotoEditor, effects: list[str], results: Path):
        self.photos, self.effects, self.results = photos, effects, results
        self._done: OrderedDict[tuple[str, Settings], PhotoReport] = OrderedDict()

    def edit(self, files: list[str] | None, effect: str, strength: float, blend: str,
             color_match: bool) -> tuple:
        """Edit every uploaded photo; returns the values of the result components."""
        if not files:
            return self.clear()
        self.sweep()
        settings = Settings.from_dict({"effect": effect, "strength": strength, "blend": blend,
                                       "color_match": color_match}, self.effects)
        t0 = time.perf_counter()
        reports = [self.edit_one(Path(path), settings) for path in files]
        html_report = report_html(reports, time.perf_counter() - t0)
        edited = [r for r in reports if r.download is not None]
        views = [{"name": r.name, "before": str(r.before), "after": str(r.after)} for r in edited]
        first = views[0] if views else None
        choice = gr.Dropdown(choices=[v["name"] for v in views], value=first["name"] if first else None,
                           visible=len(views) > 1)
        return (*self.show_view(first), html_report, [str(r.download) for r in edited] or None, choice, views)

    def edit_one(self, path: Path, settings: Settings) -> PhotoReport:
        """Edit one upload, or reuse its result: dropping more photos keeps the earlier ones in
        the list, and they need not be edited again with the same settings."""
        key = (str(path), settings)
        done = self._done.get(key)
        if done is not None and (done.download is None or done.download.exists()):
            self._done.move_to_end(key)
            return done
        report = self.photos.edit(path, path.name, settings, self.results / uuid.uuid4().hex)
        self._done[key] = report
        while len(self._done) > CACHED_RESULTS:
            self._done.popitem(last=False)
        return report

    def clear(self) -> tuple:
        """No photos: empty results."""
        return (*self.show_view(None), "", None, gr.Dropdown(choices=[], value=None, visible=False), [])

    @staticmethod
    def show_view(view: dict[str, str] | None) -> tuple:
        """(slider, before, after) for one photo's result, or empty."""
        if view is None:
            return None, None, None
        return (view["before"], view["after"]), view["before"], view["after"]

    def pick(self, views: list[dict[str, str]], name: str | None) -> tuple:
        """Show the photo picked in the list of results."""
        return self.show_view(next((v for v in views if v["name"] == name), None))

    def sweep(self) -> None:
        """Remove results older than RESULTS_TTL_S: a long-running server does not fill the disk."""
        cutoff = time.time() - RESULTS_TTL_S
        for folder in self.results.glob("*"):
            with contextlib.suppress(OSError):
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder)


def build_blocks(models: EffectModels, effects: list[str], default: str, cfg: ServeConfig,
                 workdir: Path) -> gr.Blocks:
    """The page: controls, the sample gallery, a Photos tab and a Webcam tab."""
    photos = PhotoEditor(models, int(cfg.max_megapixels * 1_000_000))
    handlers = PhotoHandlers(photos, effects, workdir / "results")
    gallery = sample_gallery(models, effects, photos.detector)
    with gr.Blocks(title="eyeedit", analytics_enabled=False, delete_cache=(600, RESULTS_TTL_S)) as page:
        gr.Markdown("# eyeedit\nEdit the eye region of faces: add or remove glasses, change eye "
                    "colour, add eye makeup. Drop photos below, or start your camera.")
        gr.Gallery(gallery, label="The built-in effects on a sample face", columns=len(gallery) or 1,
                   height=250, object_fit="contain", elem_id="samples", allow_preview=True)
        with gr.Row():
            effect = gr.Dropdown(effects, value=default, label="Effect", elem_id="effect")
            strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Strength", elem_id="strength")
            blend = gr.Radio(list(BLEND_MODES), value="feather", label="Blend", elem_id="blend",
                             info="poisson: photos only (the webcam uses feather)")
            color = gr.Checkbox(False, label="Colour match", elem_id="color-match",
                                info="match the edit's colours to the skin around it")
        controls = [effect, strength, blend, color]
        with gr.Tab("Photos"):
            _photos_tab(handlers, controls, cfg)
        with gr.Tab("Webcam"):
            _webcam_tab(controls)
    return page


def _photos_tab(handlers: PhotoHandlers, controls: list, cfg: ServeConfig) -> None:
    """Uploads, the report and downloads beside the comparison slider; before|after below."""
    with gr.Row():
        with gr.Column(scale=2, min_width=280):
            files = gr.File(file_count="multiple", label=f"Photos (up to {cfg.max_upload_mb:g} MB each)",
                            elem_id="photos", height=150)
            report = gr.HTML(elem_id="report")
            downloads = gr.File(file_count="multiple", label="Download", elem_id="downloads",
                                interactive=False)
        with gr.Column(scale=3):
            choice = gr.Dropdown([], label="Showing", visible=False, elem_id="showing")
            slider = gr.ImageSlider(label="Before / after: drag the handle", type="filepath",
                                    elem_id="slider", format="jpeg", max_height=520)
    with gr.Row():
        before = gr.Image(label="Before", type="filepath", format="jpeg", elem_id="before",
                          interactive=False, height=420)
        after = gr.Image(label="After", type="filepath", format="jpeg", elem_id="after",
                         interactive=False, height=420)
    views = gr.State([])
    outputs = [slider, before, after, report, downloads, choice, views]
    run = {"fn": handlers.edit, "inputs": [files, *controls], "outputs": outputs,
           "concurrency_id": "photos", "show_progress": "minimal"}
    files.change(**run)
    for c in controls:
        (c.release if isinstance(c, gr.Slider) else c.change)(**run)
    choice.input(handlers.pick, [views, choice], [slider, before, after], concurrency_id="photos")


def _webcam_tab(controls: list) -> None:
    """The camera and its edited frames, drawn by webcam.js; the buttons and controls call it."""
    gr.HTML("<div id='webcam-view'>"
            "<figure><video id='webcam-video' muted playsinline></video><figcaption>camera</figcaption></figure>"
            "<figure><canvas id='webcam-canvas' width='640' height='480'></canvas>"
            "<figcaption>edited</figcaption></figure></div>"
            "<p><span id='webcam-fps'></span> <span id='webcam-status'>The camera is off.</span></p>",
            elem_id="webcam", js_on_load=None)
    with gr.Row():
        start = gr.Button("Start camera", variant="primary", elem_id="webcam-start")
        stop = gr.Button("Stop", elem_id="webcam-stop")
    settings_js = "(effect, strength, blend, color_match) => ({effect, strength, blend, color_match})"
    start.click(None, controls, None,
                js=f"(...a) => {{ window.eyeeditWebcam.start(({settings_js})(...a)); }}")
    stop.click(None, None, None, js="() => { window.eyeeditWebcam.stop(); }")
    for c in controls:
        c.change(None, controls, None,
                 js=f"(...a) => {{ window.eyeeditWebcam.configure(({settings_js})(...a)); }}")


def webcam_endpoint(models: EffectModels, effects: list[str]) -> Callable:
    """The WebSocket behind the Webcam tab: settings as JSON text, frames as JPEG bytes.

    Every frame is answered with the edited JPEG and then a JSON line (``kind: frame``) with its
    server time and faces, or with only the JSON line carrying an ``error``.
    """
    active: set[int] = set()

    async def webcam(ws: WebSocket) -> None:
        if not same_origin(ws):
            await ws.close(code=1008)
            return
        await ws.accept()
        if len(active) >= MAX_WEBCAMS:
            await reply(ws, "settings", error=f"the server already streams {MAX_WEBCAMS} cameras; try later")
            await ws.close()
            return
        active.add(id(ws))
        connection = WebcamConnection(ws, models, effects)
        try:
            await connection.serve()
        except WebSocketDisconnect:
            pass
        finally:
            active.discard(id(ws))
            connection.close()

    return webcam


class WebcamConnection:
    """One browser's socket and its session (created by the first settings message)."""

    def __init__(self, ws: WebSocket, models: EffectModels, effects: list[str]):
        self.ws, self.models, self.effects = ws, models, effects
        self.session: WebcamSession | None = None

    async def serve(self) -> None:
        """Answer messages until the browser goes."""
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await self.configure(message["text"])
            elif message.get("bytes") is not None:
                await self.frame(message["bytes"])

    async def configure(self, text: str) -> None:
        try:
            settings = Settings.from_dict(json.loads(text), self.effects)
        except (json.JSONDecodeError, FrameError) as exc:
            await reply(self.ws, "settings", error=f"bad settings: {exc}")
            return
        # Building a session loads Face Mesh (and maybe a model): off the event loop.
        if self.session is None:
            self.session = await asyncio.to_thread(WebcamSession, self.models, settings)
        else:
            await asyncio.to_thread(self.session.configure, settings)
        await reply(self.ws, "settings", effect=settings.effect)

    async def frame(self, data: bytes) -> None:
        if self.session is None:
            await reply(self.ws, "frame", error="send the settings before the first frame")
            return
        try:
            jpeg, stats = await asyncio.to_thread(self.session.process, data)
        except FrameError as exc:
            await reply(self.ws, "frame", error=str(exc))
            return
        except Exception:  # noqa: BLE001 - a bad frame must not end the visitor's stream
            log.exception("webcam frame failed")
            await reply(self.ws, "frame", error="could not edit this frame (an internal error, logged "
                        "by the server)")
            return
        await self.ws.send_bytes(jpeg)
        await reply(self.ws, "frame", **stats)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


async def reply(ws: WebSocket, kind: str, **fields: Any) -> None:
    await ws.send_text(json.dumps({"kind": kind, **fields}))


def same_origin(ws: WebSocket) -> bool:
    """Refuse sockets opened by pages of other sites (a browser sends their Origin)."""
    origin = ws.headers.get("origin")
    if origin is None:  # not a browser
        return True
    return origin.split("://", 1)[-1] == ws.headers.get("host")


def build_server(cfg: ServeConfig, workdir: Path) -> FastAPI:
    """The whole app: the Gradio page at ``/`` and the webcam socket at ``/webcam``.

    Loads every installed effect and renders the sample gallery (a few seconds); raises
    ModelError when no usable model is installed or ``cfg.effect`` is unknown. Uploads go to
    ``$GRADIO_TEMP_DIR`` and results under ``workdir``: `eyeedit serve` points both, and
    ``$TMPDIR``, into one temporary folder before this module is imported.
    """
    onnxruntime.disable_telemetry_events()  # its builds report usage unless told not to
    models = EffectModels(cfg.backend, cfg.device)
    effects, default = usable_effects(models, cfg.effect)
    page = build_blocks(models, effects, default, cfg, workdir)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.add_api_websocket_route("/webcam", webcam_endpoint(models, effects))
    return gr.mount_gradio_app(
        app, page, path="/", max_file_size=int(cfg.max_upload_mb * 1024 * 1024), show_error=False,
        footer_links=[], ssr_mode=False, mcp_server=False, pwa=False, theme=THEME, css=CSS,
        js=WEBCAM_JS.read_text(encoding="utf-8"))


def run_server(app: FastAPI, host: str, port: int) -> None:
    """Serve until Ctrl-C or SIGTERM; either returns normally, so the workspace is removed."""
    # uvicorn shuts down gracefully on both, then raises the signal again for the previous
    # handler: for SIGTERM that is the default one, which would end the process before the
    # workspace could be removed. Turned into KeyboardInterrupt, it unwinds like Ctrl-C.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
