"""Video preview: tracking stability, headless replay and recording, error messages."""

import cv2
import numpy as np
import pytest

from eyeedit.data.samples import moving_face_video, sample_images, write_video
from eyeedit.editing.editor import EditOptions, Editor
from eyeedit.editing.preview import PreviewConfig, Previewer, SourceError, run_preview
from eyeedit.editing.tracking import OneEuroFilter, SmoothingConfig
from eyeedit.geometry import compose, invert, transform_points
from eyeedit.regions import region_spec

FRAMES = 90


def tint(crops):
    return np.clip(crops.astype(int) + (40, 10, -20), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from eyeedit.data.samples import astronaut

    frames, truth = moving_face_video(astronaut(), FRAMES, motion=0.3, seed=3)
    path = write_video(tmp_path_factory.mktemp("video") / "clip.avi", frames, fps=30)
    return path, frames, truth


def _corner_jitter(video, truth, smooth):
    """Mean frame-to-frame movement (pixels of the source photo) of the crop corners, with
    the clip's true motion removed."""
    editor = Editor(tint, region_spec("eyes"), EditOptions(max_faces=1))
    spec = editor.region
    box = np.array([[0, 0], [spec.width, 0], [spec.width, spec.height], [0, spec.height]], float)
    corners = []

    def record(pv):
        (track,) = pv.tracker.tracks
        frame_from_image = truth[len(corners)]
        corners.append(transform_points(compose(invert(frame_from_image), invert(track.transform)), box))

    cfg = PreviewConfig(video=video, headless=True, sync=False, smooth=smooth)
    stats = run_preview(editor, cfg, on_frame=record)
    assert stats.frames == FRAMES
    return np.linalg.norm(np.diff(np.array(corners), axis=0), axis=2).mean()


def test_smoothing_cuts_jitter(clip):
    path, _, truth = clip
    raw = _corner_jitter(path, truth, smooth=False)
    smooth = _corner_jitter(path, truth, smooth=True)
    # the astronaut's eyes are ~42 px apart: smoothed crops move < 0.5% of that per frame
    assert smooth < 0.2
    assert smooth < 0.5 * raw


def test_headless_replay_records_every_frame_with_the_edit(clip, tmp_path):
    path, frames, _ = clip
    out = tmp_path / "out.mp4"
    editor = Editor(tint, region_spec("eyes"), EditOptions(max_faces=1))
    stats = run_preview(editor, PreviewConfig(video=path, output=out, headless=True, sync=False))
    assert stats.frames == FRAMES and stats.faces == FRAMES
    cap = cv2.VideoCapture(str(out))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = cap.read()
    cap.release()
    assert ok and n == FRAMES and first.shape == (480, 640, 3)
    assert not list(tmp_path.glob(".*partial*"))  # the temporary recording was renamed
    # the edit (red tint) is present around the eyes of the recorded frame
    src = cv2.VideoCapture(str(path))
    _, original = src.read()
    src.release()
    diff = first.astype(int) - original.astype(int)  # BGR
    assert diff[..., 2].max() > 25 and np.abs(diff).mean() < 3


def test_synced_replay_runs(clip):
    path, _, _ = clip
    editor = Editor(tint, region_spec("eyes"))
    stats = run_preview(editor, PreviewConfig(video=path, headless=True, sync=True, max_frames=10))
    assert 1 <= stats.frames <= 10 and stats.faces == stats.frames  # the face is in every frame
    assert stats.seconds >= 0.9 * (stats.frames - 1) / 30  # played at the clip's 30 FPS, not faster


def test_frames_without_face_pass_through():
    editor = Editor(tint, region_spec("eyes"))
    pv = Previewer(editor, PreviewConfig(headless=True))
    frame = cv2.cvtColor(sample_images()["no-face"], cv2.COLOR_RGB2BGR)
    assert np.array_equal(pv.process(frame, 0.0), frame)


def test_keys_toggle_effect_strength_view(astronaut, tmp_path):
    editor = Editor(tint, region_spec("eyes"))
    pv = Previewer(editor, PreviewConfig(headless=True))
    frame = cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR)
    assert pv.handle_key(ord(" "), frame, tmp_path) and not pv.enabled
    assert np.array_equal(pv.process(frame, 0.0), frame)  # effect off: unchanged
    pv.handle_key(ord("["), frame, tmp_path)
    assert editor.options.strength == pytest.approx(0.9)
    pv.handle_key(ord("v"), frame, tmp_path)
    assert pv.view == "single"
    pv.handle_key(ord("s"), frame, tmp_path)
    assert len(list(tmp_path.glob("eyeedit-*.png"))) == 1
    assert not pv.handle_key(ord("q"), frame, tmp_path) and not pv.handle_key(27, frame, tmp_path)


def test_one_euro_still_signal_settles_and_follows_steps():
    f = OneEuroFilter(SmoothingConfig())
    rng = np.random.default_rng(0)
    outs = [f(np.array([[100.0, 50.0]]) + rng.normal(0, 1, (1, 2)), i / 30, unit=40) for i in range(60)]
    assert np.std(np.array(outs[30:])[:, 0, 0]) < 0.5  # noise of std 1 px is at least halved
    for i in range(60, 120):  # a jump of two eye distances is followed within a second
        out = f(np.array([[180.0, 50.0]]), i / 30, unit=40)
    assert abs(out[0, 0] - 180) < 2


def test_source_errors(tmp_path):
    editor = Editor(tint, region_spec("eyes"))
    with pytest.raises(SourceError, match="no such video"):
        run_preview(editor, PreviewConfig(video=tmp_path / "nope.mp4", headless=True))
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    with pytest.raises(SourceError, match="bad.mp4: cannot read video"):
        run_preview(editor, PreviewConfig(video=bad, headless=True))
    with pytest.raises(SourceError, match="camera 97 could not be opened; replay a file with --video"):
        run_preview(editor, PreviewConfig(camera=97, headless=True))


def test_blinks_do_not_move_the_crop(astronaut, astronaut_face):
    """Two fake blinks in a still clip: the smoothed crop barely moves, the raw one jumps."""
    from eyeedit.data.samples import close_eyes
    from eyeedit.editing.tracking import FaceTracker
    from eyeedit.landmarks import FaceMeshDetector

    closed = close_eyes(astronaut, astronaut_face)
    spec = region_spec("eyes")
    box = np.array([[0, 0], [spec.width, 0], [spec.width, spec.height], [0, spec.height]], float)
    clip = [astronaut] * 10 + [closed] * 4 + [astronaut] * 10 + [closed] * 4 + [astronaut] * 6
    moves = {}
    for smooth in (False, True):
        detector, tracker = FaceMeshDetector(max_faces=1, video=True), FaceTracker(spec, smooth=smooth)
        corners = []
        for i, frame in enumerate(clip):
            ((_, m),) = tracker.update(detector.detect(frame), i / 30)
            corners.append(transform_points(invert(m), box))
        moves[smooth] = np.linalg.norm(np.diff(np.array(corners), axis=0), axis=2).max()
    assert moves[True] < 0.5  # pixels per frame; the eyes are 42 px apart
    assert moves[True] < 0.25 * moves[False]


@pytest.mark.parametrize("spelling", ["same", "link", "dotted"])
def test_recording_never_replaces_its_input_video(clip, tmp_path, spelling):
    import hashlib
    import os
    import shutil

    from click.testing import CliRunner

    from eyeedit.cli.main import cli

    video = tmp_path / "v.avi"
    shutil.copy(clip[0], video)
    before = hashlib.sha256(video.read_bytes()).hexdigest()
    if spelling == "link":
        output = tmp_path / "link.avi"
        os.symlink(video, output)
    else:
        output = video if spelling == "same" else tmp_path / "." / ".." / tmp_path.name / "v.avi"
    editor = Editor(tint, region_spec("eyes"), EditOptions(max_faces=1))
    with pytest.raises(SourceError, match="overwrite the input video"):
        run_preview(editor, PreviewConfig(video=video, output=output, headless=True, sync=False))
    res = CliRunner().invoke(cli, ["preview", "-e", "glasses", "--video", str(video), "--headless",
                                   "--no-sync", "--output", str(output)])
    assert res.exit_code == 2 and "overwrite the input video" in res.output, res.output
    assert hashlib.sha256(video.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["v.avi"] + (["link.avi"] if spelling == "link" else []))


@pytest.mark.parametrize("kind", ["one-frame avi", "raw mjpeg"])
def test_every_frame_of_a_readable_video_is_processed_and_recorded(tmp_path, kind):
    from eyeedit.data.samples import astronaut

    frames, _ = moving_face_video(astronaut(), 1 if kind == "one-frame avi" else 6, size=(320, 240), seed=1)
    if kind == "raw mjpeg":  # concatenated JPEGs, as a camera streams them: no index, no seeking
        video = tmp_path / "clip.mjpeg"
        video.write_bytes(b"".join(cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes()
                                   for f in frames))
    else:
        video = write_video(tmp_path / "one.avi", frames, fps=30)
    out = tmp_path / "rec.avi"
    editor = Editor(tint, region_spec("eyes"), EditOptions(max_faces=1))
    stats = run_preview(editor, PreviewConfig(video=video, output=out, headless=True, sync=False))
    assert stats.frames == len(frames)
    cap = cv2.VideoCapture(str(out))
    recorded = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = cap.read()
    cap.release()
    assert recorded == len(frames) and ok
    # the first recorded frame is the first frame of the clip (edited around the eyes only)
    source = cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR).astype(int)
    assert np.abs(first.astype(int) - source)[:40].mean() < 6  # the top rows: no face, only codec noise


def _two_faces_clip(frames: int = 60, seed: int = 0):
    """Two astronaut heads drifting in opposite directions over a 640x480 frame with sensor noise.
    Returns RGB frames and, per frame, each head's offset (x, y) in the frame."""
    from eyeedit.data.samples import astronaut_head

    head = cv2.resize(astronaut_head(), (200, 200), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    out, offsets = [], []
    for i in range(frames):
        t = i / frames
        pos = [(60 + 16 * t, 80 + 6 * np.sin(2 * np.pi * t)), (380 - 16 * t, 200 - 6 * np.sin(2 * np.pi * t))]
        frame = np.full((480, 640, 3), 170, np.float64)
        for (x, y), img in zip(pos, (head, head[:, ::-1])):
            m = np.array([[1.0, 0, x], [0, 1.0, y]])
            mask = cv2.warpAffine(np.ones(img.shape[:2]), m, (640, 480))[..., None]
            frame = frame * (1 - mask) + cv2.warpAffine(img, m, (640, 480)).astype(np.float64)
        out.append(np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8))
        offsets.append(pos)
    return out, np.array(offsets)  # (frames, 2, 2)


def _track_two_faces(frames, offsets, smooth: bool) -> np.ndarray:
    """Run the preview over the clip, checking every frame that the same two tracks follow their
    own heads; returns each track's mean crop-corner movement per frame with its head's motion
    removed (source pixels), shape (2,)."""
    editor = Editor(tint, region_spec("eyes"))
    pv = Previewer(editor, PreviewConfig(headless=True, smooth=smooth))
    spec = editor.region
    box = np.array([[0, 0], [spec.width, 0], [spec.width, spec.height], [0, spec.height]], float)
    first, corners = None, []
    for i, frame in enumerate(frames):
        edited = pv.process(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), i / 30)
        tracks = pv.tracker.tracks
        assert len(tracks) == 2, i
        first = first or list(tracks)
        assert tracks == first  # the same two tracks all along, never swapped or restarted
        crops = [transform_points(invert(tr.transform), box) for tr in tracks]
        for crop, offset in zip(crops, offsets[i]):  # each crop sits over its own head's eyes
            assert np.abs(crop.mean(0) - offset - [100, 68]).max() < 6, (i, offset)
        corners.append([crop - offset for crop, offset in zip(crops, offsets[i])])
        assert not np.array_equal(cv2.cvtColor(edited, cv2.COLOR_BGR2RGB), frame)
    return np.linalg.norm(np.diff(np.array(corners)[10:], axis=0), axis=-1).mean(axis=(0, 2))


def test_two_moving_faces_keep_separate_smoothed_tracks():
    frames, offsets = _two_faces_clip()
    smooth = _track_two_faces(frames, offsets, smooth=True)
    raw = _track_two_faces(frames, offsets, smooth=False)
    # heads 200 px wide, eyes ~37 px apart: each smoothed crop moves < 0.4% of that per frame
    assert np.all(smooth < 0.15) and np.all(smooth < 0.75 * raw), (smooth, raw)


class FakeFill:
    """A fill generator's translator that records which calls found holes and which reused them."""

    fills = True

    def __init__(self):
        self.calls = []

    def __call__(self, crops):
        return self.with_hole(crops)[0]

    def find_hole(self, crops):
        self.calls.append("find")
        holes = np.zeros(crops.shape[:3], np.float32)
        holes[:, 40:50, 20:200] = len(self.calls)  # a band, marked by the call that found it
        return np.zeros_like(holes), holes

    def with_hole(self, crops, holes=None):
        if holes is None:
            return self.with_hole(crops, self.find_hole(crops)[1])
        self.calls.append("fill")
        return tint(crops), None, holes


def test_fill_models_find_the_hole_every_few_frames_and_reuse_it_between(clip):
    path, _, _ = clip
    fake = FakeFill()
    editor = Editor(fake, region_spec("glasses"), EditOptions(max_faces=1))
    seen = []

    def record(pv):
        (track,) = pv.tracker.tracks
        seen.append(float(track.hole.max()))

    stats = run_preview(editor, PreviewConfig(video=path, headless=True, sync=False, max_frames=12, find_every=5),
                        on_frame=record)
    assert stats.frames == 12
    # Both passes once before the first frame (so loading them does not stall the video), then
    # every fifth frame finds its hole (first pass) and fills it, the others fill the last one:
    every_fifth = ["find", "fill"] + ["fill"] * 4
    assert fake.calls == ["find", "fill"] + every_fifth * 2 + ["find", "fill", "fill"]
    assert seen == [3.0] * 5 + [9.0] * 5 + [15.0] * 2  # each frame filled the latest hole found
    # A new face has no hole yet: the next frame finds holes for every face.
    res = editor.run(sample_images()["astronaut"], holes=[None])
    edit = res.faces[0]
    assert fake.calls[-2:] == ["find", "fill"] and not edit.reused_hole and edit.hole is not None
    # The painted hole takes its shading from the photo around it; the rest keeps the tint.
    rest = edit.hole == 0
    assert np.array_equal(edit.crop_out[rest], tint(edit.crop_in)[rest])
    core = (slice(42, 48), slice(30, 190))  # the band, away from its edges
    cast = (edit.crop_out[core].astype(int) - edit.crop_in[core]).mean(axis=(0, 1))
    assert np.abs(cast).max() < 8  # where the tint added (40, 10, -20)


def test_no_display_is_a_usage_error_not_a_silent_abort(clip, monkeypatch):
    """Without --headless on a machine with no display, OpenCV's window aborted the process
    with no word; the command now says what to do instead."""
    from click.testing import CliRunner

    from eyeedit.cli.main import cli

    path, _, _ = clip
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    res = CliRunner().invoke(cli, ["preview", "-e", "makeup", "--video", str(path), "--max-frames", "2"])
    assert res.exit_code == 2 and "no display" in res.output and "--headless" in res.output
