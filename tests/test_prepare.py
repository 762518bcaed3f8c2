"""`eyeedit prepare`: pairing, every skip status, files and records written, resume, exit codes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import shared_faces

from eyeedit.cli.main import cli
from eyeedit.data.pairs import load_info, read_manifest
from eyeedit.data.prepare import MISALIGNMENT_POINTS, STATUSES, misalignment
from eyeedit.data.samples import sample_images, turned
from eyeedit.imageio import read_image, write_image
from eyeedit.landmarks import EYE_CORNERS
from eyeedit.regions import region_spec

# key -> expected status for the raw/ built by make_raw() (run with --max-yaw 10: the astronaut
# bent as if turned has an estimated yaw of -12 to -15 degrees, the others' within 6.5 of 0, the
# one stretched to 150% height furthest).
EXPECTED = {
    "p01": "ok",  # before: astronaut, after: rotated 30 degrees about the face
    "p02": "ok",  # scaled to 60%
    "p03": "ok",  # face touching the left border
    "p04": "profile",  # after bent as if turned: |yaw| 12-15 > --max-yaw 10
    "p05": "misaligned",  # after stretched to 150% height: eyes and brows no longer fit A's
    "p06": "unreadable",  # before is a text file named .jpg
    "p07": "no-face",
    "p08": "multiple-faces",  # two faces of the same size
    "p09": "missing-partner",  # no after photo
    "sub/p10": "ok",  # nested folder, JPEG after photo
    "p11": "ok",  # before has a large and a small face: the large one is used
    "p12": "ambiguous",  # before has p12.png and p12.jpg
    "p13": "ambiguous",  # after has p13.png and p13.jpeg
}


def stretched(image: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Scale x and y apart about the face centre; sx < 1 is the foreshortening of a turned head."""
    m = np.array([[sx, 0, (1 - sx) * 225], [0, sy, (1 - sy) * 125]], np.float64)
    return cv2.warpAffine(image, m, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT_101)


def big_and_small(base: np.ndarray) -> np.ndarray:
    small = cv2.resize(base, (200, 200), interpolation=cv2.INTER_AREA)
    right = np.full_like(base[:, :256], 128)
    right[150:350, 28:228] = small
    return np.concatenate([base, right], axis=1)  # (512, 768, 3)


def make_raw(root: Path) -> Path:
    s = sample_images()
    base = s["astronaut"]
    pairs = {
        "p01": (base, s["astronaut-rot30"]), "p02": (s["astronaut-small"], base),
        "p03": (base, s["astronaut-edge"]), "p04": (base, turned(base, 0.2)),
        "p05": (base, stretched(base, 1, 1.5)), "p06": (None, base),
        "p07": (s["no-face"], base), "p08": (s["two-faces"], base),
        "p09": (base, "missing"), "p11": (big_and_small(base), base),
    }
    for key, (a, b) in pairs.items():
        if a is None:
            (root / "before").mkdir(parents=True, exist_ok=True)
            (root / "before" / f"{key}.jpg").write_text("not an image")
        else:
            write_image(root / "before" / f"{key}.png", a)
        if not isinstance(b, str):
            write_image(root / "after" / f"{key}.png", b)
    for key, side, extra in (("p12", "before", "jpg"), ("p13", "after", "jpeg")):
        for folder in ("before", "after"):
            write_image(root / folder / f"{key}.png", base)
        write_image(root / side / f"{key}.{extra}", base)
    write_image(root / "before" / "sub" / "p10.png", base)
    write_image(root / "after" / "sub" / "p10.jpg", s["astronaut-small"])
    (root / "before" / "notes.txt").write_text("ignored: not an image name")
    return root


def checksums(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run(*args: str):
    return CliRunner().invoke(cli, ["prepare", *map(str, args)])


ARGS = ("--workers", "1", "--max-yaw", "10", "--val-fraction", "0.5", "--format", "aligned")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """raw/ and the pairs/ folder made from it; ``before`` holds the inputs' checksums."""
    tmp = tmp_path_factory.mktemp("prepare")
    raw = make_raw(tmp / "raw")
    before = checksums(raw)
    result = run(raw, tmp / "pairs", *ARGS)
    return raw, tmp / "pairs", result, before


def test_every_status_is_reported(prepared):
    raw, out, result, before = prepared
    assert result.exit_code == 0, result.output
    records = {r["key"]: r for r in read_manifest(out)}
    assert {k: r["status"] for k, r in records.items()} == EXPECTED
    assert set(EXPECTED.values()) == set(STATUSES)
    # every skipped pair has a one-line reason naming its file
    assert "p06.jpg: not an image" in records["p06"]["reason"]
    assert records["p09"]["reason"].endswith("p09.png: no photo with the same name in after/")
    assert "p07.png: no face found" in records["p07"]["reason"]
    assert "--face-index" in records["p08"]["reason"]
    assert "--max-yaw 10" in records["p04"]["reason"]
    assert records["p12"]["reason"] == "p12: several photos of this name in before/: p12.jpg, p12.png; keep one"
    assert "in after/: p13.jpeg, p13.png" in records["p13"]["reason"]
    assert "limit 0.06" in records["p05"]["reason"]
    for line in (r["reason"] for r in records.values() if r["status"] != "ok"):
        assert "\n" not in line and f"skipped {line}" in " ".join(result.output.split("\n"))
    assert checksums(raw) == before  # inputs untouched


def test_summary_table_and_report(prepared):
    _, out, result, _ = prepared
    for status in STATUSES:
        assert status in result.output
    assert "│ ok              │     5 │" in result.output
    rows = (out / "report.csv").read_text().splitlines()
    assert rows[0] == "key,status,split,reason" and len(rows) == 1 + len(EXPECTED)
    assert "p05,misaligned," in (out / "report.csv").read_text()


def test_files_and_dataset_json(prepared):
    _, out, _, _ = prepared
    records = {r["key"]: r for r in read_manifest(out)}
    info = load_info(out)
    ok = [r for r in records.values() if r["status"] == "ok"]
    assert info["counts"]["train"] + info["counts"]["val"] == len(ok) == 5
    assert info["counts"]["val"] > 0 and info["counts"]["train"] > 0  # --val-fraction 0.5
    assert info["size"] == [256, 128] and info["region"]["name"] == "eyes"
    assert info["statuses"] == {s: list(EXPECTED.values()).count(s) for s in STATUSES}
    for rec in ok:
        a = read_image(out / rec["split"] / "A" / f"{rec['key']}.png")
        b = read_image(out / rec["split"] / "B" / f"{rec['key']}.png")
        side = read_image(out / "aligned" / rec["split"] / f"{rec['key']}.png")
        assert a.shape == b.shape == (128, 256, 3)
        np.testing.assert_array_equal(side, np.concatenate([a, b], axis=1))
    written = {p.relative_to(out).with_suffix("").as_posix() for p in out.glob("*/A/**/*.png")}
    assert written == {f"{r['split']}/A/{r['key']}" for r in ok}  # skipped pairs write nothing


def test_manifest_records_geometry(prepared):
    _, out, _, _ = prepared
    spec = region_spec("eyes")
    records = {r["key"]: r for r in read_manifest(out)}
    rec = records["p01"]
    assert rec["source"] == {"A": str(prepared[0] / "before" / "p01.png"),
                             "B": str(prepared[0] / "after" / "p01.png")}
    assert rec["face_index"] == {"A": 0, "B": 0}
    pts_a, pts_b = (np.array(rec["landmarks"][s]) for s in "AB")
    assert pts_a.shape == pts_b.shape == (478, 2)
    assert np.array(rec["crop_from_image"]["A"]).shape == (2, 3)
    # B was turned 30 degrees counter-clockwise; its own transform turns it back
    ma, mb = (np.array(rec["crop_from_image"][s]) for s in "AB")
    angle = np.degrees(np.arctan2(mb[0, 1], mb[0, 0]) - np.arctan2(ma[0, 1], ma[0, 0]))
    assert abs(angle + 30) < 2
    unit = spec.width / spec.span
    corner_gap = np.linalg.norm(pts_a[list(EYE_CORNERS)] - pts_b[list(EYE_CORNERS)], axis=1) / unit
    assert corner_gap.max() < 0.03
    assert rec["misalignment"] == pytest.approx(misalignment(pts_a, pts_b, spec), abs=1e-4)
    assert max(rec["alignment_residual"].values()) < 0.05
    assert records["p05"]["misalignment"] > 0.06  # recorded for rejected pairs too
    assert records["p11"]["face_index"]["A"] == 0  # the big face is the left one


def test_rerun_is_idempotent_and_resumes(prepared, tmp_path):
    raw, first_out, _, _ = prepared
    out = tmp_path / "pairs"
    assert run(raw, out, *ARGS).exit_code == 0
    reference = checksums(out)
    assert reference == checksums(first_out)  # deterministic across runs
    again = run(raw, out, *ARGS)
    assert again.exit_code == 0 and "13 pairs done earlier, 0 to go" in again.output
    assert checksums(out) == reference

    # Simulate a kill: a torn manifest tail, a lost crop and an atomic write left in flight.
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    (out / "manifest.jsonl").write_text("".join(lines[:3]) + lines[3][:40])
    lost = next(out.glob("*/A/p11.png"))
    lost.unlink()
    (lost.parent / ".p11.png.abc123.tmp").write_bytes(b"half a png")
    resumed = run(raw, out, *ARGS)
    assert resumed.exit_code == 0 and "3 pairs done earlier, 10 to go" in resumed.output
    assert checksums(out) == reference
    keys = [r["key"] for r in read_manifest(out)]
    assert sorted(keys) == sorted(EXPECTED) and len(keys) == len(set(keys))


def test_process_pool_gives_the_same_dataset(tmp_path):
    raw = tmp_path / "raw"
    s = sample_images()
    turned = stretched(s["astronaut"], 0.6, 1)  # like a ~50 degree head turn; under --max-yaw 30
    for key, b in (("x", s["astronaut-rot30"]), ("y", turned), ("z", s["no-face"])):
        write_image(raw / "A" / f"{key}.png", s["astronaut"])
        write_image(raw / "B" / f"{key}.png", b)
    one, two = tmp_path / "one", tmp_path / "two"
    assert run(raw, one, "--workers", "1").exit_code == 0
    result = run(raw, two, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert checksums(one) == checksums(two) and len(checksums(two)) == 4 + 2
    assert [r["status"] for r in read_manifest(two)] == ["ok", "misaligned", "no-face"]


def test_same_frame(tmp_path):
    raw = tmp_path / "raw"
    s = sample_images()
    base = s["astronaut"]
    brighter = np.clip(base.astype(int) + 20, 0, 255).astype(np.uint8)  # a pixel-aligned edit
    afters = {"edit": brighter, "rotated": s["astronaut-rot30"], "resized": s["astronaut-small"]}
    for key, b in afters.items():
        write_image(raw / "before" / f"{key}.png", base)
        write_image(raw / "after" / f"{key}.png", b)
    result = run(raw, tmp_path / "pairs", "--same-frame", "--workers", "1")
    assert result.exit_code == 0, result.output
    records = {r["key"]: r for r in read_manifest(tmp_path / "pairs")}
    assert records["edit"]["status"] == "ok"
    assert records["edit"]["crop_from_image"]["A"] == records["edit"]["crop_from_image"]["B"]
    assert records["rotated"]["status"] == "misaligned"  # A's transform does not fit a turned B
    assert records["resized"]["status"] == "misaligned"
    a = read_image(next((tmp_path / "pairs").glob("*/A/edit.png"))).astype(int)
    b = read_image(next((tmp_path / "pairs").glob("*/B/edit.png"))).astype(int)
    assert np.abs((b - a) - 20).mean() < 3  # same pixels, only the edit differs


def test_face_index_picks_a_face(tmp_path):
    raw = tmp_path / "raw"
    s = sample_images()
    write_image(raw / "before" / "pair.png", s["two-faces"])
    write_image(raw / "after" / "pair.png", s["two-faces"])
    result = run(raw, tmp_path / "pairs", "--face-index", "1", "--workers", "1")
    assert result.exit_code == 0, result.output
    (rec,) = read_manifest(tmp_path / "pairs")
    assert rec["status"] == "ok" and rec["face_index"] == {"A": 1, "B": 1}
    # face 1 is the mirrored copy, on the right half of the 640-wide image
    assert np.array(rec["crop_from_image"]["A"])[0, 2] < -200
    result = run(raw, tmp_path / "pairs3", "--face-index", "2", "--workers", "1")
    assert result.exit_code == 1 and "no face number 2 (found 2)" in result.output


def test_no_pair_written_exits_1(tmp_path):
    raw = tmp_path / "raw"
    write_image(raw / "before" / "x.png", sample_images()["no-face"])
    write_image(raw / "after" / "x.png", sample_images()["astronaut"])
    result = run(raw, tmp_path / "pairs", "--workers", "1")
    assert result.exit_code == 1
    assert "no pair could be prepared" in result.output and "Traceback" not in result.output
    assert read_manifest(tmp_path / "pairs")[0]["status"] == "no-face"


def test_usage_errors_exit_2_without_output(tmp_path):
    raw = tmp_path / "raw"
    (raw / "photos").mkdir(parents=True)
    out = tmp_path / "pairs"
    result = run(raw, out)
    assert result.exit_code == 2 and "expected two sub-folders, before/ and after/" in result.output
    assert not out.exists()
    write_image(raw / "before" / "x.png", sample_images()["astronaut"])
    write_image(raw / "after" / "x.png", sample_images()["astronaut"])
    assert run(raw, out, "--size", "big").exit_code == 2
    assert run(raw, out, "--val-fraction", "1").exit_code == 2
    inside = run(raw, raw / "before" / "pairs")
    assert inside.exit_code == 2 and "must not be inside" in inside.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    result = run(raw, tmp_path / "full")
    assert result.exit_code == 2 and "not an eyeedit dataset" in result.output
    assert os.listdir(tmp_path / "full") == ["mine.txt"]
    assert run(raw, out, "--workers", "1").exit_code == 0
    changed = run(raw, out, "--workers", "1", "--size", "128x64")
    assert changed.exit_code == 2 and "--overwrite" in changed.output
    rebuilt = run(raw, out, "--workers", "1", "--size", "128x64", "--overwrite")
    assert rebuilt.exit_code == 0
    assert read_image(next(out.glob("*/A/x.png"))).shape == (64, 128, 3)


def test_misalignment_is_in_eye_units():
    spec = region_spec("eyes")
    pts = np.random.default_rng(0).uniform(0, 128, (478, 2))
    assert misalignment(pts, pts, spec) == 0
    shifted = pts.copy()
    shifted[list(MISALIGNMENT_POINTS), 0] += spec.width / spec.span  # one eye distance
    assert misalignment(pts, shifted, spec) == pytest.approx(1.0)
    assert misalignment(pts, pts + [0, 1000], spec) > 1  # only eye and brow points count, all moved


@pytest.mark.faces
def test_london_pairs_are_all_prepared_and_agree(tmp_path):
    london = shared_faces("london")
    raw = tmp_path / "raw"
    raw.mkdir()
    os.symlink(london / "neutral", raw / "before")
    os.symlink(london / "smiling", raw / "after")
    result = run(raw, tmp_path / "pairs", "--workers", "2")
    assert result.exit_code == 0, result.output
    records = read_manifest(tmp_path / "pairs")
    assert len(records) == 86 and all(r["status"] == "ok" for r in records)
    spec = region_spec("eyes")
    unit = spec.width / spec.span
    pts = {s: np.array([r["landmarks"][s] for r in records]) for s in "AB"}  # (86, 478, 2)
    corners = list(EYE_CORNERS)
    gap = np.linalg.norm(pts["A"][:, corners] - pts["B"][:, corners], axis=2) / unit  # (86, 4)
    assert np.sqrt((gap**2).mean(1)).max() < 0.05  # eye corners agree within 5% of the eye distance
    # A different person's smiling photo is often rejected, the same person's never.
    cross = [misalignment(pts["A"][i], pts["B"][(i + k) % 86], spec)
             for i in range(86) for k in (1, 7, 30)]
    assert max(r["misalignment"] for r in records) < 0.06
    assert np.mean(np.array(cross) > 0.06) > 0.05
    assert np.median(cross) > 2 * np.median([r["misalignment"] for r in records])


def test_named_sides(tmp_path):
    from eyeedit.data.prepare import InputError, find_pairs, side_folders
    from eyeedit.data.samples import sample_images

    raw = tmp_path / "raw"
    img = sample_images()["astronaut"]
    write_image(raw / "neutral" / "p1.png", img)
    write_image(raw / "smiling" / "p1.png", img)
    assert side_folders(raw, ("neutral", "smiling")) == (raw / "neutral", raw / "smiling")
    assert [j.key for j in find_pairs(raw, ("neutral", "smiling"))] == ["p1"]
    with pytest.raises(InputError, match="no sub-folder frowning/"):
        side_folders(raw, ("neutral", "frowning"))
    with pytest.raises(InputError, match="expected two sub-folders"):
        side_folders(raw)
    res = CliRunner().invoke(cli, ["prepare", str(raw), str(tmp_path / "out"), "--sides", "neutral,smiling",
                                   "--workers", "1", "--val-fraction", "0"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "train" / "A" / "p1.png").is_file()
    bad = CliRunner().invoke(cli, ["prepare", str(raw), str(tmp_path / "o2"), "--sides", "neutral"])
    assert bad.exit_code == 2 and "BEFORE,AFTER" in bad.output
    for sides in ("neutral,neutral", "neutral,./neutral"):
        same = CliRunner().invoke(cli, ["prepare", str(raw), str(tmp_path / "o3"), "--sides", sides])
        assert same.exit_code == 2 and "names one folder twice" in same.output, same.output
        assert not (tmp_path / "o3").exists()
