"""The `liveportrait` renderer in the pipeline: LivePortrait's networks behind the same
interface as the weight-free renderer (app/renderers.py).

Per avatar face, once: F and M on a square crop around the face (MediaPipe's landmarks place
it; there is no InsightFace). Per frame, for every driven face in one batch: M on the driver's
crop, its motion relative to the driver's neutral applied to the avatar's keypoints (as
LivePortrait's relative mode does), stitching, W, G; each 512x512 result is pasted back into
the portrait with the compositor's Laplacian blend.

The driver's neutral is a frame M has seen: the first one, and again whenever the motion
stabiliser takes a fresh reference from the current frame (Calibrate, a scene cut, a face found
after a long loss). Faces nobody drives show the still portrait.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import time
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np
import torch

from engines.base import FieldEngine
from models.liveportrait import CheckpointError, LivePortraitNets, expected_files, load_liveportrait
from models.liveportrait import keypoints as kpm
from models.liveportrait.config import RELEASE_HINT

from .blend import blend_region
from .liveportrait_renderer import LivePortraitSettings, SquareBox, cat_info, crop_square, face_box, paste_mask
from .render import RenderSettings
from .renderer_types import LIVEPORTRAIT, FaceJob, RendererChoice, WeightsMissing

if TYPE_CHECKING:
    from .animator import Animator
    from .avatar import Avatar
    from .cast import Cast
    from .retarget import DriverReference


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def open_liveportrait(choice: RendererChoice) -> "LivePortraitBackend":
    """The networks from `choice.weights`, or WeightsMissing naming the files and their source."""
    if choice.weights is None:
        raise WeightsMissing("--renderer liveportrait needs its checkpoints: pass --weights DIR, the folder "
                             "holding " + ", ".join(expected_files()) + ".", RELEASE_HINT)
    device = resolve_device(choice.device)
    try:
        nets = load_liveportrait(choice.weights, device)
    except CheckpointError as exc:
        raise WeightsMissing(str(exc), "") from exc
    return LivePortraitBackend(nets, device)


@dataclass
class LivePortraitFace:
    """One avatar face: its crop box (avatar pixels) and what F and M made of it."""

    box: SquareBox
    mask: np.ndarray  # the paste-back blend mask over the box
    f_s: torch.Tensor  # (1, 32, 16, 64, 64)
    info: kpm.KpInfo
    x_s: torch.Tensor  # (1, 21, 3)
    neutral: kpm.KpInfo | None = None  # the driver's, in M's terms
    reference: "DriverReference | None" = None  # the stabiliser's reference that neutral goes with

    def paste(self, view: np.ndarray, patch_rgb: np.ndarray, levels: int) -> None:
        """The network's image into `view` (this face's avatar image on the canvas), in place."""
        side = self.box.side
        interp = cv2.INTER_AREA if side < patch_rgb.shape[0] else cv2.INTER_LINEAR
        patch = cv2.resize(cv2.cvtColor(patch_rgb, cv2.COLOR_RGB2BGR), (side, side), interpolation=interp)
        blend_region(view, patch, self.mask, (self.box.x0, self.box.y0), levels=levels)


def _is_fresh_reference(animator: "Animator", face: LivePortraitFace, landmarks: np.ndarray) -> bool:
    """The stabiliser took a new reference from this very frame: this frame is the new neutral.
    (A reference moved to a better face seen earlier has no M output here, and is not followed.)"""
    ref = animator.stabilizer.reference
    return ref is not None and ref is not face.reference and np.array_equal(ref.landmarks, landmarks)


@dataclass
class LivePortraitPainter:
    nets: LivePortraitNets
    settings: LivePortraitSettings
    device: str

    @torch.inference_mode()
    def paint(self, canvas: np.ndarray, driver_image: np.ndarray, jobs: Sequence[FaceJob]) -> float:
        jobs = [j for j in jobs if j.driver is not None]
        if not jobs:
            return 0.0
        t0 = time.perf_counter()
        crop = self.settings.driver_crop
        x = torch.from_numpy(np.concatenate([crop_square(driver_image, face_box(j.driver.landmarks, crop), crop.size)
                                             for j in jobs])).to(self.device)
        info = kpm.kp_info(*self.nets.motion_extractor(x))
        faces: list[LivePortraitFace] = [j.animator.renderer for j in jobs]
        for i, (j, face) in enumerate(zip(jobs, faces)):
            if face.neutral is None or _is_fresh_reference(j.animator, face, j.driver.landmarks):
                face.neutral = kpm.KpInfo(*(v[i:i + 1] for v in _info_fields(info)))
            face.reference = j.animator.stabilizer.reference
        x_s = torch.cat([f.x_s for f in faces])
        x_d = kpm.relative_driving_keypoints(cat_info([f.info for f in faces]), info,
                                             cat_info([f.neutral for f in faces]))
        if self.settings.stitching:
            x_d = kpm.stitch(self.nets.stitching, x_s, x_d)
        warped = self.nets.warping_module(torch.cat([f.f_s for f in faces]), x_d, x_s)[0]
        images = self.nets.spade_generator(warped)  # (B, 3, 512, 512) RGB in [0, 1]
        rgb = (images.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
        model_ms = (time.perf_counter() - t0) * 1e3
        for j, face, img in zip(jobs, faces, rgb):
            (ox, oy), (w, h) = j.member.origin, j.member.avatar.size
            face.paste(canvas[oy:oy + h, ox:ox + w], img, self.settings.blend_levels)
        return model_ms


def _info_fields(info: kpm.KpInfo) -> tuple[torch.Tensor, ...]:
    return tuple(getattr(info, f) for f in ("pitch", "yaw", "roll", "t", "exp", "scale", "kp"))


@dataclass
class LivePortraitBackend:
    nets: LivePortraitNets
    device: str = "cpu"
    settings: LivePortraitSettings = field(default_factory=LivePortraitSettings)
    name: str = LIVEPORTRAIT

    @torch.inference_mode()
    def face(self, avatar: "Avatar", engine: FieldEngine, settings: RenderSettings) -> LivePortraitFace:
        crop = self.settings.source_crop
        box = face_box(avatar.face.landmarks, crop)
        x = torch.from_numpy(crop_square(avatar.image, box, crop.size)).to(self.device)
        info = kpm.kp_info(*self.nets.motion_extractor(x))
        return LivePortraitFace(box, paste_mask(box.side, self.settings.feather),
                                self.nets.appearance_feature_extractor(x), info, kpm.posed_keypoints(info))

    def painter(self, cast: "Cast", animators: list["Animator"], engine: FieldEngine) -> LivePortraitPainter:
        return LivePortraitPainter(self.nets, self.settings, self.device)

    def close(self) -> None:
        pass  # the networks are freed with the backend
