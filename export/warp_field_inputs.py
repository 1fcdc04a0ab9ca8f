"""The WarpField's parity-check inputs: synthetic ones made here, or recorded ones turned into feeds.

Synthetic inputs need no app: control points scattered over the crop, each grid point tied to
its three nearest (a stand-in for the avatar's triangulation), and a smooth head-like motion
(small rotation, scale and shift varying over the frames). Smooth, like real displacements, so
the flow the model fits is the kind the app produces and not noise.
"""

from __future__ import annotations

import numpy as np

from models.warp_field import NUM_CONTROL_POINTS

INPUT_NAMES = ("tri_index", "tri_weight", "displacement")
BATCH = 4  # frames side by side in the batched feed (the multi-face path)


def synthetic(grid_size: int, frames: int = 30, seed: int = 0) -> dict[str, np.ndarray]:
    """tri_index (1, G*G, 3), tri_weight (1, G*G, 3), displacement (frames, V, 2)."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(-1.0, 1.0, (NUM_CONTROL_POINTS, 2))
    lin = np.linspace(-1.0, 1.0, grid_size)
    grid = np.stack(np.meshgrid(lin, lin, indexing="xy"), axis=-1).reshape(-1, 2)
    dist = np.linalg.norm(grid[:, None] - points[None], axis=-1)
    nearest = np.argsort(dist, axis=1)[:, :3]
    inv = 1.0 / (np.take_along_axis(dist, nearest, axis=1) + 1e-3)
    weight = inv / inv.sum(axis=1, keepdims=True)
    # Motion fades towards the crop border, as the rig keeps its border still.
    fade = np.clip(1.0 - np.abs(points).max(axis=1), 0.0, 1.0)[:, None] ** 2
    disps = []
    for i in range(max(frames, 1)):
        a, s = 0.15 * np.sin(i / 5.0), 1.0 + 0.05 * np.sin(i / 3.0)
        rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        moved = points @ rot.T + np.array([0.05 * np.sin(i / 7.0), 0.03 * np.cos(i / 4.0)])
        disps.append(fade * (moved - points))
    return {"tri_index": nearest[None].astype(np.int64), "tri_weight": weight[None].astype(np.float32),
            "displacement": np.stack(disps).astype(np.float32)}


def feeds(inputs: dict[str, np.ndarray], grid_size: int) -> list[dict[str, np.ndarray]]:
    """One batch-1 feed per frame, then one batched feed of the last frames."""
    ti, tw, disp = inputs["tri_index"], inputs["tri_weight"], inputs["displacement"]
    if ti.shape[1:] != (grid_size * grid_size, 3) or disp.shape[1:] != (NUM_CONTROL_POINTS, 2):
        raise ValueError(f"recorded WarpField inputs do not fit the grid-{grid_size} model: tri_index {ti.shape}, "
                         f"displacement {disp.shape} (want (1, {grid_size * grid_size}, 3) and "
                         f"(N, {NUM_CONTROL_POINTS}, 2)); record them with the same --grid")
    out = [{"tri_index": ti, "tri_weight": tw, "displacement": d[None]} for d in disp]
    k = min(BATCH, len(disp))
    out.append({"tri_index": np.repeat(ti, k, axis=0), "tri_weight": np.repeat(tw, k, axis=0),
                "displacement": disp[-k:]})
    return out
