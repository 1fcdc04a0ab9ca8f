"""app/liveportrait_renderer.py with stub networks (the real ones take ~30 s a frame on two CPU
cores): crop geometry, the batch over faces, the paste-back region, and the first frame as the
driver's neutral."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from app.landmarks import FACE_OVAL
from app.liveportrait_renderer import LivePortraitRenderer, face_box, paste_mask
from models.liveportrait import keypoints as kpm


def _landmarks(cx: float, cy: float, r: float) -> np.ndarray:
    lm = np.zeros((478, 3), np.float32)
    lm[:, :2] = (cx, cy)
    a = np.linspace(0, 2 * np.pi, len(FACE_OVAL), endpoint=False)
    lm[list(FACE_OVAL), 0] = cx + r * np.cos(a)
    lm[list(FACE_OVAL), 1] = cy + r * np.sin(a)
    return lm


class _Stub:
    """Records the batch sizes and the keypoints W receives; G paints pure red."""

    def __init__(self):
        self.calls: list[tuple[str, int]] = []
        self.kp: list[tuple[torch.Tensor, torch.Tensor]] = []
        g = torch.Generator().manual_seed(0)
        self._heads = [torch.randn(1, n, generator=g) for n in (66, 66, 66, 3, 63)] + [torch.ones(1, 1),
                                                                                       torch.randn(1, 63, generator=g)]

    def appearance_feature_extractor(self, x):
        self.calls.append(("F", x.shape[0]))
        return torch.zeros(x.shape[0], 32, 16, 64, 64)

    def motion_extractor(self, x):
        self.calls.append(("M", x.shape[0]))
        return tuple(h.expand(x.shape[0], -1) + x.mean() for h in self._heads)

    def stitching(self, pair):
        return torch.zeros(pair.shape[0], 65)

    def warping_module(self, f, kd, ks):
        self.calls.append(("W", f.shape[0]))
        self.kp.append((kd, ks))
        return torch.zeros(f.shape[0], 256, 64, 64), None, None

    def spade_generator(self, feat):
        self.calls.append(("G", feat.shape[0]))
        img = torch.zeros(feat.shape[0], 3, 512, 512)
        img[:, 0] = 1.0
        return img


def test_two_faces_run_as_one_batch_and_paste_back_inside_their_boxes():
    avatar = np.full((400, 600, 3), 200, np.uint8)
    faces = [_landmarks(150, 200, 40), _landmarks(450, 210, 30)]
    stub = _Stub()
    r = LivePortraitRenderer(SimpleNamespace(**{k: getattr(stub, k) for k in (
        "appearance_feature_extractor", "motion_extractor", "stitching", "warping_module", "spade_generator")}),
        avatar, faces)
    assert stub.calls == [("F", 2), ("M", 2)]
    frame = np.full((480, 640, 3), 90, np.uint8)
    out = r.render(frame, [_landmarks(300, 240, 60), _landmarks(500, 240, 50)])
    assert out.shape == avatar.shape and stub.calls[2:] == [("M", 2), ("W", 2), ("G", 2)]
    red = (out[..., 2] > 230) & (out[..., 1] < 40)
    for lm in faces:
        b = face_box(lm, r.settings.source_crop)
        inner = out[b.y0 + b.side // 4:b.y0 + 3 * b.side // 4, max(b.x0, 0) + b.side // 4:b.x0 + 3 * b.side // 4]
        assert (inner[..., 2] > 230).all(), "G's image must cover the middle of the face box"
    ys, xs = np.nonzero(red)
    assert xs.min() >= face_box(faces[0], r.settings.source_crop).x0 and ys.max() < 400
    assert (out[:5, 280:320] == 200).all(), "between and above the boxes the portrait is untouched"
    # The first frame is each driver's neutral: the avatar keeps its own keypoints (no motion).
    kd, ks = stub.kp[0]
    assert torch.allclose(kd, ks, atol=1e-5)
    # A face without a driver stays as it was; only the driven one is rendered.
    out2 = r.render(frame, [None, _landmarks(500, 240, 50)])
    assert stub.calls[-3:] == [("M", 1), ("W", 1), ("G", 1)]
    assert (out2[200, 150] == 200).all()


def test_paste_mask_fades_to_zero_at_the_border():
    m = paste_mask(200, 0.1)
    assert m[100, 100] > 0.99 and m[0].max() < 1e-3 and m[:, -1].max() < 1e-3


def test_relative_motion_is_identity_for_the_neutral_frame():
    g = torch.Generator().manual_seed(1)

    def info():
        return kpm.KpInfo(*(10 * torch.randn(1, 1, generator=g) for _ in range(3)), torch.randn(1, 3, generator=g),
                          torch.randn(1, 21, 3, generator=g), torch.rand(1, 1, generator=g) + 0.5,
                          torch.randn(1, 21, 3, generator=g))

    s, d = info(), info()
    assert torch.allclose(kpm.relative_driving_keypoints(s, d, d), kpm.posed_keypoints(s), atol=1e-5)
