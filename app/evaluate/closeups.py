"""Eye and mouth close-ups: `python -m app.evaluate.closeups [--out DIR] [PORTRAIT ...]`.

Each portrait is driven by one clip (default `lp_d10.mp4`: glances both ways, blinks, talking)
through the whole pipeline; five moments are picked from the driver's own landmarks (glance
left, glance right, blink, widest mouth, shut mouth) and one sheet per portrait is written:
rows driver eyes, output eyes, driver mouth, output mouth. Run it at two commits for a before /
after pair (docs/closeups/).
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

import cv2
import numpy as np

from app import face_metrics as fm
from app.avatar import load_avatar
from app.capture import VideoFileSource
from app.data_dir import default_data_dir, missing_data_message
from app.errors import PuppetCamError
from app.pipeline import PipelineSettings, Puppeteer

DEFAULT_PORTRAITS = ("astronaut.png", "lp_s9.jpg", "lp_s2.jpg", "lp_s7.jpg", "grace_hopper.jpg")
TILE = (240, 108)  # width, height of one close-up


def pick_moments(driver: list[np.ndarray]) -> list[tuple[str, int]]:
    """(label, frame) for glance −, glance +, blink, mouth open, mouth shut, from the driver's
    landmarks (glances and the shut mouth among frames with the eyes open)."""
    iris_x = np.array([fm.iris_position(p)[:, 0].mean() for p in driver])
    eyes = np.array([fm.eye_openness(p).mean() for p in driver])
    mouth = np.array([fm.mouth_gap(p) for p in driver])
    open_eyes = eyes > 0.7 * np.median(eyes)
    idx = np.arange(len(driver))
    cand = idx[open_eyes] if open_eyes.any() else idx
    return [("glance -", int(cand[np.argmin(iris_x[cand])])), ("glance +", int(cand[np.argmax(iris_x[cand])])),
            ("blink", int(np.argmin(eyes))), ("mouth open", int(np.argmax(mouth))),
            ("mouth shut", int(cand[np.argmin(mouth[cand])]))]


def _crop(image: np.ndarray, points: np.ndarray, part: str) -> np.ndarray:
    """The eyes (both) or the mouth of a face, scaled to TILE."""
    if part == "eyes":
        centre = points[[33, 263], :2].mean(axis=0)
        half = np.array([1.0, 0.45]) * 0.75 * np.linalg.norm(points[33, :2] - points[263, :2])
    else:
        centre = points[[61, 291, 0, 17], :2].mean(axis=0)
        half = np.array([1.0, 0.45]) * 1.0 * np.linalg.norm(points[61, :2] - points[291, :2])
    h, w = image.shape[:2]
    x0, y0 = np.maximum(np.floor(centre - half).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(centre + half).astype(int), (w, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((TILE[1], TILE[0], 3), np.uint8)
    return cv2.resize(image[y0:y1, x0:x1], TILE, interpolation=cv2.INTER_CUBIC)


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    out = tile.copy()
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def closeup_sheet(portrait: Path, clip: Path, max_frames: int = 300) -> np.ndarray:
    """One portrait's sheet (BGR): columns the five moments, rows driver / output eyes and mouth."""
    avatar = load_avatar(portrait)
    frames: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    with VideoFileSource(clip) as source:
        puppeteer = Puppeteer.for_avatar(avatar, PipelineSettings(engine="torch"))
        try:
            while len(frames) < max_frames and (frame := source.read()) is not None:
                result = puppeteer.process(frame)
                if result.faces[0] is not None:
                    frames.append((frame.image, result.faces[0].landmarks, result.image, result.posed[0].landmarks))
        finally:
            puppeteer.close()
    if not frames:
        raise PuppetCamError(f"No face found in {clip}.", "Use a clip that shows a face.")
    rows: list[list[np.ndarray]] = [[], [], [], []]
    for label, t in pick_moments([f[1] for f in frames]):
        driver, d_pts, output, o_pts = frames[t]
        for k, (part, image, pts, who) in enumerate((("eyes", driver, d_pts, "driver"), ("eyes", output, o_pts, "output"),
                                                      ("mouth", driver, d_pts, "driver"), ("mouth", output, o_pts, "output"))):
            rows[k].append(_label(_crop(image, pts, part), f"{who} {part}: {label}"))
    return np.vstack([np.hstack(r) for r in rows])


def shut_eyes_row(portrait: Path) -> tuple[np.ndarray, np.ndarray]:
    """(rest, shut): the portrait's eyes as loaded and posed with both eyes shut (the app's
    default framing, torch engine), cropped alike and labelled with MediaPipe's shut / rest
    openness per eye."""
    import dataclasses

    from app.evaluate.reenactment import Detector
    from app.render import Renderer
    from app.retarget import Motion, RetargetSettings, apply_motion
    from engines.torch_engine import TorchFieldEngine

    avatar = load_avatar(portrait)
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    shut = dataclasses.replace(Motion.neutral(), eye_openness=np.array([0.05, 0.05]))
    image = renderer.render(apply_motion(avatar.face, shut, RetargetSettings()))
    points = avatar.face.landmarks
    detector = Detector()
    try:
        seen = [detector(im) for im in (avatar.image, image)]
    finally:
        detector.close()
    label = "shut"
    if all(p is not None for p in seen):
        ratio = fm.eye_openness(seen[1]) / np.maximum(fm.eye_openness(seen[0]), 1e-6)
        label = f"shut, MediaPipe {ratio[0]:.2f}/{ratio[1]:.2f}"
    return (_label(_crop(avatar.image, points, "eyes"), f"{portrait.stem} at rest"),
            _label(_crop(image, points, "eyes"), label))


def self_glances_row(clip: Path, max_frames: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Self-reenactment of `clip` (the portrait is its own first face, as in the evaluation):
    (real eyes, output eyes) at the driver's four strongest glances (left, right, up, down,
    among frames with the eyes open), side by side. The output should look where the real
    frame looks."""
    from app import landmarks as lm
    from app.avatar import prepare_avatar

    from app.evaluate import metrics as M
    from app.evaluate.data import SquareCrop
    from app.evaluate.reenactment import SELF_FRAMING, Detector, find_first_face, self_pass

    detector = Detector()
    try:
        with VideoFileSource(clip) as source:
            first, pts = find_first_face(source, detector)
            if first is None:
                raise PuppetCamError(f"No face found in {clip}.", "Use a clip that shows a face.")
            crop = SquareCrop.around(source.size, pts[list(lm.FACE_OVAL), :2].mean(axis=0), M.face_size(pts))
            avatar = prepare_avatar(crop.apply(first.image), SELF_FRAMING, name=clip.stem)
            log = self_pass(avatar, source, crop, first, max_frames, engine="torch")
    finally:
        detector.close()
    have = [t for t, p in enumerate(log.tracked) if p is not None]
    if len(have) < 4:
        raise PuppetCamError(f"Too few frames with a face in {clip}.", "Use a clip that shows a face throughout.")
    iris = np.array([fm.iris_position(log.tracked[t]).mean(axis=0) for t in have])
    eyes = np.array([fm.eye_openness(log.tracked[t]).mean() for t in have])
    cand = np.flatnonzero(eyes > 0.7 * np.median(eyes))
    if not len(cand):
        cand = np.arange(len(have))
    picks = [("glance -", cand[np.argmin(iris[cand, 0])]), ("glance +", cand[np.argmax(iris[cand, 0])]),
             ("up", cand[np.argmin(iris[cand, 1])]), ("down", cand[np.argmax(iris[cand, 1])])]
    real, out = [], []
    for label, i in picks:
        t = have[i]
        real.append(_label(_crop(log.drivers[t], log.tracked[t], "eyes"), f"real #{t} {label}"))
        out.append(_label(_crop(log.outputs[t], log.tracked[t], "eyes"), f"output #{t}"))
    return np.hstack(real), np.hstack(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.evaluate.closeups", description=__doc__.splitlines()[0])
    p.add_argument("portraits", nargs="*", help=f"portrait files (default: {', '.join(DEFAULT_PORTRAITS)} "
                                                "from the footage folder)")
    p.add_argument("--clip", type=Path, default=None, help="driving clip (default: driving/lp_d10.mp4)")
    p.add_argument("--out", type=Path, default=Path("docs/closeups"))
    p.add_argument("--shut-eyes", type=Path, default=None, metavar="FILE",
                   help="instead: one sheet of the portraits at rest and with both eyes shut, to FILE")
    p.add_argument("--self-glances", type=Path, default=None, metavar="FILE",
                   help="instead: the clip's strongest glances, real against self-reenacted, to FILE")
    args = p.parse_args(argv)
    data = default_data_dir()
    portraits = [Path(x) for x in args.portraits] or [data / "portraits" / n for n in DEFAULT_PORTRAITS]
    if args.shut_eyes is not None:
        rows = []
        for portrait in portraits:
            try:
                rows.append(np.hstack(shut_eyes_row(portrait)))
            except PuppetCamError as exc:
                print(f"{portrait.name}: skipped: {exc}", file=sys.stderr)
        return _write(args.shut_eyes, rows)
    clip = args.clip or data / "driving" / "lp_d10.mp4"
    if not clip.is_file():
        print(missing_data_message("python -m app.evaluate.closeups", clip), file=sys.stderr)
        return 2
    if args.self_glances is not None:
        try:
            return _write(args.self_glances, list(self_glances_row(clip)))
        except PuppetCamError as exc:
            print(f"{clip.name}: skipped: {exc}", file=sys.stderr)
            return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for portrait in portraits:
        try:
            sheet = closeup_sheet(portrait, clip)
        except PuppetCamError as exc:
            print(f"{portrait.name}: skipped: {exc}", file=sys.stderr)
            continue
        path = args.out / f"{portrait.stem}.jpg"
        cv2.imwrite(str(path), sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])
        print(f"wrote {path}")
    return 0


def _write(path: Path, rows: list[np.ndarray]) -> int:
    """One sheet of `rows` to `path`; 1 when there is nothing to write."""
    if not rows:
        print(f"{path}: nothing to write", file=sys.stderr)
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
