"""A learned renderer: LivePortrait's networks driven by our MediaPipe tracking.

Per avatar face, once: a square crop around the face -> F (feature volume) and M (its own
keypoints and pose). Per frame and face: a square crop of the driver's face -> M; motion relative
to the driver's first (neutral) frame is applied to the avatar's keypoints, then stitching, W
and G; the 512x512 result is pasted back into the full portrait with the compositor's Laplacian
blend. All faces of a frame run as one batch.

The pipeline uses it through `--renderer liveportrait` (app/liveportrait_backend.py); stand-alone:
    python -m app.liveportrait_renderer --weights DIR --avatar IMG --driver VIDEO --out OUT.mp4
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from models.liveportrait import LivePortraitNets
from models.liveportrait import keypoints as kpm

from .blend import blend_region
from .landmarks import FACE_OVAL


@dataclass(frozen=True)
class CropSettings:
    """LivePortrait crops well beyond the face (hair, neck): side = scale x face size, centre
    moved up by shift_y x face size. Its defaults are 2.3 / -0.125 for the source, 2.2 / -0.1 for
    the driver."""

    scale: float = 2.3
    shift_y: float = -0.125
    size: int = 256


@dataclass(frozen=True)
class LivePortraitSettings:
    source_crop: CropSettings = CropSettings()
    driver_crop: CropSettings = CropSettings(scale=2.2, shift_y=-0.1)
    stitching: bool = True
    blend_levels: int = 4
    feather: float = 0.1  # paste-back margin (mask 0 -> 1), as a fraction of the crop side


@dataclass(frozen=True)
class SquareBox:
    x0: int
    y0: int
    side: int


def face_box(landmarks: np.ndarray, crop: CropSettings) -> SquareBox:
    """Integer square around the face oval of (N, 2+) pixel landmarks (MediaPipe's mesh)."""
    oval = landmarks[list(FACE_OVAL), :2]
    lo, hi = oval.min(axis=0), oval.max(axis=0)
    size = float((hi - lo).max())
    cx, cy = (lo + hi) / 2.0
    cy += crop.shift_y * size
    side = max(int(round(crop.scale * size)), 8)
    return SquareBox(int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side)


def crop_square(image_bgr: np.ndarray, box: SquareBox, size: int) -> np.ndarray:
    """(1, 3, size, size) RGB float32 in [0, 1]; outside the image the border is replicated."""
    h, w = image_bgr.shape[:2]
    s = size / box.side
    m = np.array([[s, 0.0, -box.x0 * s + 0.5 * s - 0.5], [0.0, s, -box.y0 * s + 0.5 * s - 0.5]], np.float32)
    patch = cv2.warpAffine(image_bgr, m, (size, size), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    rgb = cv2.cvtColor(patch, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])


def paste_mask(side: int, feather: float) -> np.ndarray:
    """(side, side) float32 in [0, 1]: 1 inside, fading to 0 before the border (no box edge)."""
    f = max(int(round(feather * side / 2)), 1)
    m = np.zeros((side, side), np.float32)
    m[2 * f:side - 2 * f, 2 * f:side - 2 * f] = 1.0  # 4 sigma from the border: no visible box edge
    return cv2.GaussianBlur(m, (0, 0), f / 2.0)


@dataclass
class _AvatarFace:
    box: SquareBox
    f_s: torch.Tensor  # (1, 32, 16, 64, 64)
    info: kpm.KpInfo
    x_s: torch.Tensor  # (1, 21, 3)
    neutral: kpm.KpInfo | None = None  # the driver's first frame, set on first sight


def cat_info(infos: list[kpm.KpInfo]) -> kpm.KpInfo:
    return kpm.KpInfo(*(torch.cat([getattr(i, f) for i in infos]) for f in
                        ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")))


def split_info(info: kpm.KpInfo, n: int) -> list[kpm.KpInfo]:
    fs = ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")
    return [kpm.KpInfo(*(getattr(info, f)[i:i + 1] for f in fs)) for i in range(n)]


@dataclass
class LivePortraitRenderer:
    """Renders one portrait with one or more faces; `render` is the per-frame call. Driver face i
    drives avatar face i."""

    nets: LivePortraitNets
    avatar_bgr: np.ndarray
    avatar_landmarks: list[np.ndarray]
    settings: LivePortraitSettings = LivePortraitSettings()
    device: str = "cpu"
    faces: list[_AvatarFace] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        if not self.avatar_landmarks:
            raise ValueError("the avatar has no face to animate")
        crops, boxes = [], []
        for lm in self.avatar_landmarks:
            boxes.append(face_box(lm, self.settings.source_crop))
            crops.append(crop_square(self.avatar_bgr, boxes[-1], self.settings.source_crop.size))
        x = torch.from_numpy(np.concatenate(crops)).to(self.device)
        with torch.inference_mode():
            f_s = self.nets.appearance_feature_extractor(x)
            info = kpm.kp_info(*self.nets.motion_extractor(x))
            x_s = kpm.posed_keypoints(info)
        for i, (box, inf) in enumerate(zip(boxes, split_info(info, len(boxes)))):
            self.faces.append(_AvatarFace(box, f_s[i:i + 1], inf, x_s[i:i + 1]))

    def reset_neutral(self) -> None:
        """The next frame a face is seen becomes that driver's neutral again."""
        for face in self.faces:
            face.neutral = None

    @torch.inference_mode()
    def render(self, frame_bgr: np.ndarray, driver_landmarks: list[np.ndarray | None]) -> np.ndarray:
        """The whole portrait, posed. Faces without a driver (None or missing) stay as they are."""
        out = self.avatar_bgr.copy()
        active = [i for i, lm in enumerate(driver_landmarks[:len(self.faces)]) if lm is not None]
        if not active:
            return out
        crops = [crop_square(frame_bgr, face_box(driver_landmarks[i], self.settings.driver_crop),
                             self.settings.driver_crop.size) for i in active]
        x = torch.from_numpy(np.concatenate(crops)).to(self.device)
        drivers = split_info(kpm.kp_info(*self.nets.motion_extractor(x)), len(active))
        for i, d in zip(active, drivers):
            if self.faces[i].neutral is None:
                self.faces[i].neutral = d
        faces = [self.faces[i] for i in active]
        src = cat_info([f.info for f in faces])
        x_s = torch.cat([f.x_s for f in faces])
        x_d = kpm.relative_driving_keypoints(src, cat_info(drivers), cat_info([f.neutral for f in faces]))
        if self.settings.stitching:
            x_d = kpm.stitch(self.nets.stitching, x_s, x_d)
        warped = self.nets.warping_module(torch.cat([f.f_s for f in faces]), x_d, x_s)[0]
        images = self.nets.spade_generator(warped)  # (B, 3, 512, 512) RGB in (0, 1)
        rgb = (images.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
        for face, img in zip(faces, rgb):
            self._paste(out, face.box, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        return out

    def _paste(self, canvas: np.ndarray, box: SquareBox, patch_bgr: np.ndarray) -> None:
        interp = cv2.INTER_AREA if box.side < patch_bgr.shape[0] else cv2.INTER_LINEAR
        patch = cv2.resize(patch_bgr, (box.side, box.side), interpolation=interp)
        blend_region(canvas, patch, paste_mask(box.side, self.settings.feather), (box.x0, box.y0),
                     levels=self.settings.blend_levels)


def _main(argv: list[str] | None = None) -> int:
    import argparse
    import sys
    import time

    from models.liveportrait import CheckpointError, load_liveportrait

    from .tracking import FaceTracker, detect_faces_still

    p = argparse.ArgumentParser(prog="python -m app.liveportrait_renderer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, required=True, help="LivePortrait checkpoint folder (pretrained_weights)")
    p.add_argument("--avatar", type=Path, required=True)
    p.add_argument("--driver", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: all)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    try:
        nets = load_liveportrait(args.weights, args.device)
    except CheckpointError as exc:
        print(f"--renderer liveportrait: {exc}", file=sys.stderr)
        return 2
    avatar = cv2.imread(str(args.avatar))
    if avatar is None:
        print(f"cannot read avatar image {args.avatar}", file=sys.stderr)
        return 2
    faces = detect_faces_still(avatar)
    if not faces:
        print(f"no face found in {args.avatar}", file=sys.stderr)
        return 2
    renderer = LivePortraitRenderer(nets, avatar, [f.landmarks for f in faces], device=args.device)
    cap = cv2.VideoCapture(str(args.driver))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    writer = cv2.VideoWriter(str(args.out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (avatar.shape[1], avatar.shape[0]))
    n, t0 = 0, time.perf_counter()
    try:
        with FaceTracker() as tracker:
            while not args.max_frames or n < args.max_frames:
                ok, frame = cap.read()
                if not ok:
                    break
                found = tracker.detect(frame)
                writer.write(renderer.render(frame, [f.landmarks for f in found]))
                n += 1
    finally:
        cap.release()
        writer.release()
    dt = time.perf_counter() - t0
    print(f"{args.out}: {n} frames, {len(faces)} face(s), {1e3 * dt / max(n, 1):.0f} ms per frame on {args.device}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
