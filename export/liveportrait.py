"""LivePortrait's networks as export registry entries (`python -m export --model liveportrait`).

They are not part of the default export: without the user's checkpoints they carry the fixture
recipe's random weights, which is enough to check the graphs (op set, 4-D GridSample only, ONNX
Runtime vs torch) but renders noise. With `--weights DIR` they carry the user's weights, and the
file name gets a tag of that folder so the two never mix in the cache.
"""

from __future__ import annotations

from functools import lru_cache
import hashlib
from pathlib import Path

import numpy as np

from .registry import REPO, ModelConfig, ModelSpec

PREFIX = "liveportrait_"
GROUP = "liveportrait"  # --model liveportrait: all of NAMES
NAMES = tuple(PREFIX + n for n in ("appearance", "motion", "warping", "spade", "stitching"))
SOURCE_FILES = tuple(sorted((REPO / "models" / "liveportrait").glob("*.py")))
FIXTURE = REPO.parent / "shared" / "fixtures" / "liveportrait"
# The fixture's crops of two bundled paintings (see its README): real faces for the parity feeds.
_CROPS = {"source": ("mona_lisa.jpg", (140, 80, 580, 520)),
          "driving": ("girl_with_a_pearl_earring.jpg", (190, 270, 750, 830))}


def weights_tag(weights: Path | None) -> str:
    """'random' for the recipe's weights, else a short hash of the checkpoint files' paths,
    sizes and mtimes (new files -> new ONNX file names)."""
    if weights is None:
        return "random"
    from models.liveportrait.checkpoints import expected_files, resolve_root

    root = resolve_root(weights)
    h = hashlib.sha256()
    for rel in expected_files():
        p = root / rel
        st = p.stat() if p.is_file() else None
        h.update(f"{p.resolve()}:{st.st_size if st else -1}:{st.st_mtime_ns if st else -1}".encode())
    return "w" + h.hexdigest()[:10]


@lru_cache(maxsize=2)
def _nets(weights: str | None):
    from models.liveportrait import LivePortraitNets, load_liveportrait

    return LivePortraitNets.random() if weights is None else load_liveportrait(weights)


def _first_output(module):
    """The warping module also returns its deformation and occlusion map; the engine needs only
    the warped features."""
    import torch

    class FirstOutput(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, feature, kp_driving, kp_source):  # names = the ONNX input names
            return self.inner(feature, kp_driving, kp_source)[0]

    return FirstOutput(module).eval()


def _image(which: str) -> np.ndarray:
    """(1, 3, 256, 256) RGB float32 in [0, 1]: the fixture's PNG, else the same crop of the
    bundled painting."""
    import cv2

    png = FIXTURE / f"{which}_256.png"
    if png.is_file():
        bgr = cv2.imread(str(png))
    else:
        name, (x0, y0, x1, y1) = _CROPS[which]
        bgr = cv2.resize(cv2.imread(str(REPO / "app" / "assets" / "avatars" / name))[y0:y1, x0:x1], (256, 256),
                         interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])


@lru_cache(maxsize=2)
def _keypoints(weights: str | None) -> dict[str, np.ndarray]:
    """x_s, x_d and the stitched x_d of the two painted faces (M and S in torch)."""
    import torch

    from models.liveportrait import keypoints as kpm
    from models.liveportrait.chain import motion_outputs

    nets = _nets(weights)
    with torch.no_grad():
        x_s = motion_outputs(nets, torch.from_numpy(_image("source")), "source")["x_s"]
        x_d = motion_outputs(nets, torch.from_numpy(_image("driving")), "driving")["x_d"]
        pair = kpm.stitching_input(x_s, x_d)
        x_d_st = kpm.apply_stitching(x_d, nets.stitching(pair))
    return {"x_s": x_s.numpy(), "x_d": x_d.numpy(), "pair": pair.numpy(), "x_d_stitched": x_d_st.numpy()}


@lru_cache(maxsize=2)
def _f_s(weights: str | None) -> np.ndarray:
    import torch

    with torch.no_grad():
        return _nets(weights).appearance_feature_extractor(torch.from_numpy(_image("source"))).numpy()


@lru_cache(maxsize=2)
def _warped(weights: str | None) -> np.ndarray:
    import torch

    k = _keypoints(weights)
    with torch.no_grad():
        out = _nets(weights).warping_module(torch.from_numpy(_f_s(weights)), torch.from_numpy(k["x_d_stitched"]),
                                            torch.from_numpy(k["x_s"]))[0]
    return out.numpy()


def make_specs(weights: Path | str | None = None) -> dict[str, ModelSpec]:
    """The five per-network entries, bound to a checkpoint folder (None: recipe weights)."""
    import torch

    w = None if weights is None else str(Path(weights).expanduser().resolve())
    tag = weights_tag(None if w is None else Path(w))

    def variant(_c: ModelConfig) -> str:
        return tag

    def images(batch: int):
        return (torch.rand(batch, 3, 256, 256, generator=torch.Generator().manual_seed(0)),)

    def image_feeds(config, frames=0, recorded=None):
        src, drv = _image("source"), _image("driving")
        return [{"image": src}, {"image": drv}, {"image": np.concatenate([src, drv])}]

    def warp_example(batch: int):
        g = torch.Generator().manual_seed(0)
        return (torch.randn(batch, 32, 16, 64, 64, generator=g), 0.3 * torch.randn(batch, 21, 3, generator=g),
                0.3 * torch.randn(batch, 21, 3, generator=g))

    def warp_feeds(config, frames=0, recorded=None):
        k, f_s = _keypoints(w), _f_s(w)
        # The chain's keypoints, and the same scaled into the volume (the fixture's W2 case),
        # where heat maps and per-keypoint samples are not all zero.
        return [{"feature": f_s, "kp_driving": k["x_d_stitched"], "kp_source": k["x_s"]},
                {"feature": f_s, "kp_driving": 0.2 * k["x_d_stitched"], "kp_source": 0.2 * k["x_s"]}]

    def spade_feeds(config, frames=0, recorded=None):
        return [{"feature": _warped(w)}]

    def stitch_feeds(config, frames=0, recorded=None):
        s = _keypoints(w)["pair"]
        return [{"features": s}, {"features": np.concatenate([s, s * 0.9])}]

    common = dict(source_files=SOURCE_FILES, variant=variant)
    specs = [
        ModelSpec(PREFIX + "appearance", "LivePortrait F: (B,3,256,256) RGB -> f_s (B,32,16,64,64), once per avatar",
                  ("image",), ("f_s",), lambda c: _nets(w).appearance_feature_extractor,
                  lambda c, b: images(b), image_feeds, tolerance=1e-3, **common),
        ModelSpec(PREFIX + "motion", "LivePortrait M (ConvNeXt-V2): RGB -> pose bins, t, exp, scale, kp",
                  ("image",), ("pitch", "yaw", "roll", "t", "exp", "scale", "kp"),
                  lambda c: _nets(w).motion_extractor, lambda c, b: images(b), image_feeds, tolerance=1e-4,
                  **common),
        ModelSpec(PREFIX + "warping", "LivePortrait W: (f_s, kp_driving, kp_source) -> warped features (B,256,64,64)",
                  ("feature", "kp_driving", "kp_source"), ("out",), lambda c: _first_output(_nets(w).warping_module),
                  lambda c, b: warp_example(b), warp_feeds, tolerance=1e-3, **common),
        ModelSpec(PREFIX + "spade", "LivePortrait G: warped features (B,256,64,64) -> RGB (B,3,512,512)",
                  ("feature",), ("image",), lambda c: _nets(w).spade_generator,
                  lambda c, b: (torch.randn(b, 256, 64, 64, generator=torch.Generator().manual_seed(0)),),
                  spade_feeds, tolerance=1e-3, **common),
        ModelSpec(PREFIX + "stitching", "LivePortrait S: [x_s, x_d] flattened (B,126) -> delta (B,65)",
                  ("features",), ("delta",), lambda c: _nets(w).stitching,
                  lambda c, b: (torch.randn(b, 126, generator=torch.Generator().manual_seed(0)),), stitch_feeds,
                  tolerance=1e-4, **common),
    ]
    assert tuple(s.name for s in specs) == NAMES
    return {s.name: s for s in specs}

