"""Render: warp the avatar from its own landmarks to the posed ones, and fill the mouth.

The costly part to compute, the dense backward map, comes from the `WarpField` model at the
rig's grid resolution (through whichever engine runs it). The final full-resolution resampling
is done on the fastest path for the device: `cv2.remap` on uint8 on a CPU (about 8x faster
than a float32 `grid_sample` there), `grid_sample` where the image already lives on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Callable

import cv2
import numpy as np

from engines.base import FieldEngine

from .avatar import Avatar
from .background import composite, person_layer
from .eyes import close_eyes, lash_colours, lid_room, openness, sharpen_lids
from .gaze import GazeLayer
from .landmarks import INNER_LIPS, lip_meeting_line
from .lips import sharpen_lips
from .mouth import MouthSource, fill_mouth, mouth_palette, polygon_area
from .retarget import PosedFace, close_rest_lips
from .rig import DEFAULT_GRID_SIZE


@dataclass(frozen=True)
class RenderSettings:
    """The warp model's own settings (Newton steps) belong to the engine: see `engines/`."""

    grid_size: int = DEFAULT_GRID_SIZE
    fill_mouth: bool = True
    still_background: bool = True  # the person over the avatar's still plate (where it has one)


class Renderer:
    """Renders one avatar; `render` is the per-frame call."""

    def __init__(self, avatar: Avatar, engine: FieldEngine, settings: RenderSettings = RenderSettings()) -> None:
        self.avatar = avatar
        self.engine = engine
        self.settings = settings
        rig = avatar.rig
        c = rig.crop
        self._crop_image = np.ascontiguousarray(avatar.image[c.y0:c.y1, c.x0:c.x1])
        # With a still background plate, the crop carries the person's coverage as its alpha.
        bg = avatar.background if settings.still_background else None
        self._layer = person_layer(self._crop_image, bg) if bg is not None else self._crop_image
        ys, xs = np.mgrid[0:c.height, 0:c.width].astype(np.float32)
        self._identity = (xs, ys)
        self._scale = np.array([(c.width - 1) / 2.0, (c.height - 1) / 2.0], np.float32)
        self._tri_index = rig.tri_index[None]
        self._tri_weight = rig.tri_weight[None]
        g = rig.grid_size
        lin = np.linspace(-1.0, 1.0, g, dtype=np.float32)
        self._grid_identity = np.stack(np.meshgrid(lin, lin), axis=-1)
        self._rest_openness = (openness(avatar.face.landmarks, 0), openness(avatar.face.landmarks, 1))
        self._rest_local = avatar.face.landmarks[:, :2] - (c.x0, c.y0)
        self._cell = max(c.width - 1, c.height - 1) / max(g - 1, 1)
        self._gaze = GazeLayer(self._crop_image, self._rest_local)
        self._lashes = lash_colours(self._crop_image, self._rest_local)
        self._lid_room = lid_room(self._crop_image, self._rest_local)
        self._palette = mouth_palette(self._crop_image, self._rest_local, avatar.skin_lab)
        # An open-mouth portrait is posed from its lips closed (retarget.close_rest_lips): the
        # interior shows once the posed lips part further than that.
        closed = close_rest_lips(avatar.face.landmarks)
        self._mouth_rest_area = min(avatar.mouth_area, polygon_area(closed[list(INNER_LIPS), :2]))
        self._teeth = lip_meeting_line(closed)[:, :2]  # PosedFace.teeth at rest
        # Its own mouth open: the warp brings its lips together over its interior.
        self._seam = not np.array_equal(closed, avatar.face.landmarks)
        # Milliseconds of each pass of the last frame (`python -m app.bench --passes` reads them).
        self.pass_ms: dict[str, float] = {}

    @property
    def rig_tensors(self) -> tuple[np.ndarray, np.ndarray]:
        """The model's per-avatar inputs, (1, G*G, 3) each; constant, so engines cache them."""
        return self._tri_index, self._tri_weight

    def displacement(self, posed: PosedFace) -> np.ndarray:
        """The model's per-frame input: (V, 2) control-point motion in crop units."""
        return self.avatar.rig.displacement(posed.landmarks, _ring_mover(posed))

    def maps_from_grid(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model's (G, G, 2) output -> full-resolution cv2.remap maps (crop pixels)."""
        # Upsample the *displacement*, not the map: it is zero at the crop border, so the
        # resize's pixel-centre convention cannot shift the still parts of the image.
        offset = (grid - self._grid_identity) * self._scale
        c = self.avatar.rig.crop
        big = cv2.resize(offset, (c.width, c.height), interpolation=cv2.INTER_LINEAR)
        return self._identity[0] + big[..., 0], self._identity[1] + big[..., 1]

    def sampling_maps(self, posed: PosedFace) -> tuple[np.ndarray, np.ndarray]:
        """Full-resolution cv2.remap maps (crop pixels) for this pose."""
        grid = self.engine(self._tri_index, self._tri_weight, self.displacement(posed)[None])[0]
        return self.maps_from_grid(grid)

    def frame_maps(self, posed: PosedFace, grid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The final maps `render_crop` samples the crop with (crop pixels, output -> avatar):
        what the warp-quality measures look at. `grid`: as in `render_crop`."""
        t0 = time.perf_counter()
        mx, my = self.maps_from_grid(grid) if grid is not None else self.sampling_maps(posed)
        local = self.local_landmarks(posed)
        t1 = time.perf_counter()
        sharpen_lids(mx, my, local, self._rest_local, self._cell, self._lid_room)  # lids at pixel resolution
        t2 = time.perf_counter()
        sharpen_lips(mx, my, local, self._rest_local, self._cell)  # and the inner lips
        t3 = time.perf_counter()
        self.pass_ms.update(maps=(t1 - t0) * 1e3, lids=(t2 - t1) * 1e3, lips=(t3 - t2) * 1e3)
        return mx, my

    def local_landmarks(self, posed: PosedFace) -> np.ndarray:
        """The posed landmarks in crop pixels."""
        c = self.avatar.rig.crop
        local = posed.landmarks.copy()
        local[:, :2] -= (c.x0, c.y0)
        return local

    @property
    def rest_landmarks(self) -> np.ndarray:
        """The avatar's own landmarks in crop pixels."""
        return self._rest_local

    def render_crop(self, posed: PosedFace, mouth: MouthSource | None = None,
                    grid: np.ndarray | None = None,
                    maps: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """The posed rig crop only. `grid` is this face's model output when the caller ran the
        model itself (several faces in one batch); otherwise it is run here. `maps`: the
        `frame_maps` for this pose when the caller has them already."""
        c = self.avatar.rig.crop
        mx, my = maps if maps is not None else self.frame_maps(posed, grid)
        local = self.local_landmarks(posed)
        t0 = time.perf_counter()
        m1, m2 = cv2.convertMaps(mx, my, cv2.CV_16SC2)  # fixed-point maps remap ~2x faster
        warped = cv2.remap(self._layer, m1, m2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if warped.shape[2] == 4:  # the warped person over the still background plate
            warped = composite(warped, self.avatar.background)
        t1 = time.perf_counter()
        neutral = posed.head.apply(self.avatar.face.landmarks[:, :2]) - (c.x0, c.y0)
        self._gaze.apply(warped, mx, my, local, neutral, posed.head.scale, posed.head.rotation)
        t2 = time.perf_counter()
        close_eyes(warped, local, self._rest_openness, self._lashes)
        t3 = time.perf_counter()
        if self.settings.fill_mouth:
            teeth = posed.teeth if posed.teeth is not None else posed.head.apply(self._teeth)
            bite = teeth - (c.x0, c.y0)
            fill_mouth(warped, local, self._mouth_rest_area, self._palette, bite, mouth, self._seam)
        t4 = time.perf_counter()
        self.pass_ms.update(remap=(t1 - t0) * 1e3, gaze=(t2 - t1) * 1e3, lashes=(t3 - t2) * 1e3,
                            mouth=(t4 - t3) * 1e3)
        return warped

    def render(self, posed: PosedFace, mouth: MouthSource | None = None) -> np.ndarray:
        """The whole avatar image, posed."""
        c = self.avatar.rig.crop
        out = self.avatar.image.copy()
        # The warp is the identity on the crop border (static anchors there), so the crop
        # pastes back with no seam to blend.
        out[c.y0:c.y1, c.x0:c.x1] = self.render_crop(posed, mouth)
        return out


def _ring_mover(posed: PosedFace) -> Callable[[np.ndarray], np.ndarray]:
    return lambda ring: posed.ring_transform.apply(ring)
