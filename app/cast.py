"""What a several-face output shows: one canvas and the avatar faces on it.

Two ways to fill it:
- a group portrait: every face of one image animates in place (`--faces 2` on a photo of two);
- several portraits side by side (or in a column or a grid), one face each.

Each face keeps its own rig. Faces that share an image get rings pulled in (`reach`) so their
warps never overlap: each face then owns the pixels inside its still outer ring (its
`support`), and the faces composite onto the canvas in any order.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .avatar import (DEFAULT_FRAMING, Avatar, avatar_from_landmarks, check_face, check_image_size, frame_image, load_avatar,
                     prepare_avatar, read_image, to_framed)
from .framing import Framing
from .errors import AvatarError
from .rig import DEFAULT_GRID_SIZE, ring_geometry
from .tracking import FaceObservation, detect_faces_still

LAYOUTS = ("row", "column", "grid")
TILE_SIZE = (512, 512)
GROUP_SIZE = (1024, 576)  # 16:9, what video calls and streams expect
MIN_REACH = 0.5  # closer neighbours than this allows would cut hair and ears off the moving part


@dataclass
class CastFace:
    avatar: Avatar  # its image is the canvas region it lives in (a tile, or the whole group photo)
    origin: tuple[int, int]  # where avatar.image's top-left pixel sits on the canvas
    # bool over the rig crop: the pixels this face's warp may change; None: the whole crop (a
    # portrait alone owns its crop, so its crop pastes back whole, as it always did)
    support: np.ndarray | None

    @property
    def label(self) -> str:
        return self.avatar.name

    @property
    def canvas_box(self) -> tuple[int, int, int, int]:
        c = self.avatar.rig.crop
        x, y = self.origin
        return x + c.x0, y + c.y0, x + c.x1, y + c.y1

    def canvas_center(self) -> np.ndarray:
        return self.avatar.face.landmarks[:, :2].mean(axis=0) + self.origin


@dataclass
class Cast:
    name: str
    canvas: np.ndarray  # BGR uint8, output size: the still picture the faces animate on
    faces: list[CastFace]

    @property
    def size(self) -> tuple[int, int]:
        return self.canvas.shape[1], self.canvas.shape[0]

    def slot_x(self) -> list[float]:
        """Each face's horizontal position, 0 (left) to 1 (right)."""
        return [float(f.canvas_center()[0] / self.size[0]) for f in self.faces]

    def face_at(self, x: float, y: float) -> int | None:
        """The face whose moving region holds canvas pixel (x, y) (for click-to-assign)."""
        for i, f in enumerate(self.faces):
            x0, y0, x1, y1 = f.canvas_box
            if x0 <= x < x1 and y0 <= y < y1 and (f.support is None or f.support[int(y - y0), int(x - x0)]):
                return i
        return None


def single_cast(avatar: Avatar) -> Cast:
    """One portrait alone: a cast of one face that owns its whole image."""
    return Cast(avatar.name, avatar.image, [CastFace(avatar, (0, 0), None)])


def support_mask(avatar: Avatar, reach: float) -> np.ndarray:
    """Inside the still outer ring, a little grown: the warp is the identity beyond it."""
    rig, c = avatar.rig, avatar.rig.crop
    rings = ring_geometry(avatar.face.landmarks, reach)
    mask = np.zeros((c.height, c.width), np.uint8)
    centre = tuple(int(round(v)) for v in rings.centre - (c.x0, c.y0))
    # The grid is upsampled bilinearly: the warp's support spreads by one grid cell.
    grow = max(c.width, c.height) / max(rig.grid_size - 1, 1) + 2
    axes = tuple(int(math.ceil(r + grow)) for r in rings.outer_radii)
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, thickness=-1)
    return mask.astype(bool)


def separating_reach(landmark_sets: Sequence[np.ndarray]) -> list[float]:
    """Per face, the ring scale (at most 1) at which no two faces' outer rings overlap."""
    rings = [ring_geometry(p) for p in landmark_sets]
    reach = [1.0] * len(rings)
    for i in range(len(rings)):
        for j in range(i + 1, len(rings)):
            d = rings[j].centre - rings[i].centre
            dist = float(np.linalg.norm(d))
            u = d / max(dist, 1e-6)
            need = rings[i].outer_extent(u) + rings[j].outer_extent(u)
            k = 0.95 * dist / max(need, 1e-6)
            reach[i], reach[j] = min(reach[i], k), min(reach[j], k)
    return [max(r, MIN_REACH) for r in reach]


def _faces_in(image: np.ndarray, where: str, limit: int,
              found: list[FaceObservation] | None = None) -> list[FaceObservation]:
    """The animatable faces of an image, left to right; faces that fail the checks are dropped
    when others pass (a small face in the background should not stop a group portrait)."""
    check_image_size(image, where)
    if found is None:
        found = detect_faces_still(image, max_faces=limit)
    good, first_error = [], None
    for f in found:
        try:
            check_face(image, f, where)
            good.append(f)
        except AvatarError as exc:
            first_error = first_error or exc
    if not good:
        raise first_error or AvatarError(f"{where} has no face PuppetCam can animate.",
                                         "Use a portrait with clearly visible human faces, seen from the front.")
    return sorted(good, key=lambda f: f.center[0])


def group_cast(image: np.ndarray, faces: int, framing: Framing | None, grid_size: int = DEFAULT_GRID_SIZE,
               name: str = "group", path: Path | None = None, detected: list[FaceObservation] | None = None) -> Cast:
    """Every face of one image (up to `faces`, the largest), animated in place. `detected`:
    the image's faces when the caller has already looked for them."""
    where = f"Avatar {path}" if path else "The avatar image"
    found = _faces_in(image, where, faces, detected)
    focus = np.mean([f.center for f in found], axis=0)
    framed, affine = frame_image(image, framing, focus)
    pts = [to_framed(f.landmarks, affine) for f in found]
    reach = separating_reach(pts)
    members = []
    for k, (p, r) in enumerate(zip(pts, reach)):
        avatar = avatar_from_landmarks(framed, p, grid_size, f"{name} face {k + 1}", path, reach=r)
        members.append(CastFace(avatar, (0, 0), support_mask(avatar, r)))
    return Cast(name, framed, members)


def layout_cells(count: int, layout: str) -> list[tuple[int, int]]:
    """(column, row) of each tile."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "row":
        return [(i, 0) for i in range(count)]
    if layout == "column":
        return [(0, i) for i in range(count)]
    cols = math.ceil(math.sqrt(count))
    return [(i % cols, i // cols) for i in range(count)]


def tiled_cast(avatars: Sequence[Avatar], layout: str = "row") -> Cast:
    """Several avatars, each already framed at one tile size, side by side."""
    tw, th = avatars[0].size
    if any(a.size != (tw, th) for a in avatars):
        raise ValueError("tiled avatars must share one tile size")
    cells = layout_cells(len(avatars), layout)
    cols, rows = max(c for c, _ in cells) + 1, max(r for _, r in cells) + 1
    canvas = np.zeros((rows * th, cols * tw, 3), np.uint8)
    members = []
    for a, (c, r) in zip(avatars, cells):
        canvas[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = a.image
        members.append(CastFace(a, (c * tw, r * th), support_mask(a, 1.0)))
    return Cast(" + ".join(a.name for a in avatars), canvas, members)


def load_cast(paths: Sequence[Path | str], faces: int, size: tuple[int, int] | None = None, fit: bool = False,
              layout: str = "row", grid_size: int = DEFAULT_GRID_SIZE,
              single: Framing | None = DEFAULT_FRAMING) -> Cast:
    """What `--avatar A [B ...] --faces N` shows.

    One face of one image: that portrait alone, framed by `single` (None: its own size).
    One image with several faces: its faces, in place. Otherwise one face per image, tiled;
    with fewer images than faces the images repeat (two people can drive two copies of one
    portrait). `size` is the whole output of several faces (default: 16:9 for a group, 512x512
    per tile).
    """
    paths = [Path(p) for p in paths]
    if faces == 1 and len(paths) == 1:
        return single_cast(load_avatar(paths[0], single, grid_size))
    loaded: dict[Path, Avatar] = {}
    if len(paths) == 1:
        image = read_image(paths[0])
        detected = detect_faces_still(image, max_faces=faces)
        if len(detected) > 1:
            w, h = size or GROUP_SIZE
            return group_cast(image, faces, Framing(w, h, "fit" if fit or size is None else "fill"),
                              grid_size, paths[0].stem, paths[0], detected)
    cells = layout_cells(faces, layout)
    cols, rows = max(c for c, _ in cells) + 1, max(r for _, r in cells) + 1
    tile = TILE_SIZE if size is None else (max(size[0] // cols, 64), max(size[1] // rows, 64))
    framing = Framing(tile[0], tile[1], "fit" if fit else "fill")
    if len(paths) == 1:  # one face, already found: no second read or detection
        loaded[paths[0]] = prepare_avatar(image, framing, grid_size, paths[0].stem, paths[0],
                                          face=detected[0] if detected else None)
    avatars = []
    for k in range(faces):
        p = paths[k % len(paths)]
        if p not in loaded:
            loaded[p] = load_avatar(p, framing, grid_size)
        avatars.append(loaded[p])
    return tiled_cast(avatars, layout)
