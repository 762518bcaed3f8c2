"""`eyeedit serve`: the web app (photos and webcam in the browser)."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click

from eyeedit.cli.options import Finite, backend_options
from eyeedit.cli.ui import console, fail
from eyeedit.model.store import ModelError, find_model


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. The default serves this computer only; --host 0.0.0.0 "
                   "lets anyone on your network open the page, upload photos and use the server's "
                   "CPU: an explicit choice, there is no login. (Browsers offer their camera only "
                   "to https pages and to localhost, so other computers get the photos only.)")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True,
              help="Port to listen on.")
@click.option("-e", "--effect", default=None,
              help="Effect selected when the page opens (default: glasses, or the first installed).")
@click.option("--max-upload-mb", type=Finite(min=0.1), default=25.0, show_default=True,
              help="Largest file accepted per upload, in megabytes.")
@click.option("--max-megapixels", type=Finite(min=0.1), default=40.0, show_default=True,
              help="Largest photo edited, in millions of pixels (larger ones are refused).")
@backend_options
def serve(host: str, port: int, effect: str | None, max_upload_mb: float, max_megapixels: float,
          backend: str, device: str) -> None:
    """Open eyeedit in a web browser: edit photos and your webcam without a terminal.

    \b
    The page shows every installed effect on a sample face, then:
      Photos   drop one or more photos; pick the effect, strength, blend and colour match;
               compare before and after (side by side and with a slider); download each
               result in its own format and size (EXIF orientation applied), as `apply`
               writes it; every face found is listed with its status and the server's time.
      Webcam   your camera, edited live with the same face tracking and smoothing as
               `preview`, with the frame rate shown.

    Needs the web extra: pip install 'eyeedit[web]'. Works offline: nothing is fetched from
    the internet (no fonts, scripts, analytics or share links). Uploads and results are kept
    in one temporary folder, removed when the server stops (Ctrl-C).

    Exit status: 0 when stopped with Ctrl-C; 1 when the web extra or the models are missing, or
    the address cannot be used (one line says why); 2 on usage errors.
    """
    check_address(host, port)
    if effect is not None:
        check_effect(effect)  # before the slow start-up
    with workspace() as workdir:
        try:
            # Imported here on purpose: the web extra is optional, and its absence is one line.
            from eyeedit import web
        except ImportError as exc:
            if exc.name in WEB_MODULES:
                fail("the web extra is not installed: pip install 'eyeedit[web]'")
            raise
        cfg = web.ServeConfig(host=host, port=port, effect=effect, max_upload_mb=max_upload_mb,
                              max_megapixels=max_megapixels, backend=backend, device=device)
        try:
            app = web.build_server(cfg, workdir)
        except ModelError as exc:
            fail(str(exc))
        console.print(f"eyeedit is serving at [bold]http://{host}:{port}[/] (Ctrl-C stops it)")
        web.run_server(app, host, port)


WEB_MODULES = {"gradio", "fastapi", "uvicorn", "websockets", "starlette"}


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    """One temporary folder for everything the server writes (uploads, results, the temporary
    files of the libraries), removed on exit.

    Entered before gradio and onnxruntime are imported: they read where temporary files go
    from the environment once, at import. The environment is restored afterwards.
    """
    keys = ("TMPDIR", "GRADIO_TEMP_DIR", "GRADIO_ANALYTICS_ENABLED")
    saved, saved_tempdir = {k: os.environ.get(k) for k in keys}, tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="eyeedit-serve-") as tmp:
        os.environ.update(TMPDIR=tmp, GRADIO_TEMP_DIR=str(Path(tmp) / "uploads"),
                          GRADIO_ANALYTICS_ENABLED="False")
        tempfile.tempdir = None  # recomputed from $TMPDIR on next use
        try:
            yield Path(tmp)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            tempfile.tempdir = saved_tempdir


def check_effect(effect: str) -> None:
    """Fail with one line naming the installed effects when ``effect`` is not one of them."""
    try:
        find_model(effect)
    except ModelError as exc:
        fail(str(exc))


def check_address(host: str, port: int) -> None:
    """Fail with one line when ``host:port`` cannot be listened on (in use, not an address)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except socket.gaierror:
        fail(f"--host {host}: not an address of this computer")
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} is in use; pick another with --port")
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
