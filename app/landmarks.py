"""Named index sets of MediaPipe's 478-point face mesh (468 mesh points + 10 iris points).

The mesh topology is fixed by MediaPipe, so these are constants of the model, not tuning.
"""

from __future__ import annotations

import functools

import numpy as np

NUM_LANDMARKS = 478

# Eyelid contours, corner to corner, upper and lower paired by position along the eye.
RIGHT_EYE_CORNERS = (33, 133)
RIGHT_EYE_UPPER = (246, 161, 160, 159, 158, 157, 173)
RIGHT_EYE_LOWER = (7, 163, 144, 145, 153, 154, 155)
LEFT_EYE_CORNERS = (263, 362)
LEFT_EYE_UPPER = (466, 388, 387, 386, 385, 384, 398)
LEFT_EYE_LOWER = (249, 390, 373, 374, 380, 381, 382)
RIGHT_IRIS = (468, 469, 470, 471, 472)  # centre first
LEFT_IRIS = (473, 474, 475, 476, 477)

# Inner lip loop in drawing order (upper lip from the right corner, then lower lip back).
INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
OUTER_LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
MOUTH_CORNERS = (61, 291)
# Inner-lip pairs, corner to corner, upper and lower paired by position along the mouth, and
# the inner lips' own corners.
UPPER_INNER_LIP = (191, 80, 81, 82, 13, 312, 311, 310, 415)
LOWER_INNER_LIP = (95, 88, 178, 87, 14, 317, 402, 318, 324)
INNER_LIP_CORNERS = (78, 308)
UPPER_INNER_LIP_MID = 13
LOWER_INNER_LIP_MID = 14
CHIN = 152  # the face oval's lowest point

RIGHT_BROW = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
LEFT_BROW = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)

FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)

# Points that barely move with expression (forehead, nose bridge, nose, cheekbones, eye corners):
# head pose is fitted on these so that a smile or an open jaw does not read as a head turn.
RIGID = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 2, 98, 327, 234, 454, 127, 356, 93, 323,
         33, 133, 362, 263, 108, 337, 69, 299)

# The outline at the sides of the face, by the ears: the depth a head turns about (a turn in place
# leaves the head's side silhouette where it is while the nose swings across).
SIDE_OUTLINE = (234, 454, 127, 356, 93, 323)

# Cheek patches used to measure skin colour (for colour-matching the mouth interior).
CHEEKS = (50, 101, 118, 117, 123, 280, 330, 347, 346, 352)


def _grown_region(seed: tuple[int, ...], rings: int) -> np.ndarray:
    """Indices of `seed` plus the mesh neighbours within `rings` steps of it."""
    import mediapipe as mp  # deferred: only the topology is needed, not the models

    neighbours: dict[int, set[int]] = {}
    for a, b in mp.solutions.face_mesh_connections.FACEMESH_TESSELATION:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    region = set(seed)
    frontier = set(seed)
    for _ in range(rings):
        frontier = {n for i in frontier for n in neighbours.get(i, ())} - region
        region |= frontier
    return np.array(sorted(region), dtype=np.int64)


def lip_meeting_line(points: np.ndarray) -> np.ndarray:
    """The inner lips' midline, (11, D), from one inner corner to the other: where the lips
    meet when they are shut."""
    mid = (points[list(UPPER_INNER_LIP)] + points[list(LOWER_INNER_LIP)]) / 2
    corners = points[list(INNER_LIP_CORNERS)]
    return np.vstack([corners[:1], mid, corners[1:]]).astype(np.float64)


@functools.cache
def part_indices() -> dict[str, np.ndarray]:
    """Landmarks each per-part gain acts on; the rest of the face follows the 'face' gain.

    Computed on first use (it reads MediaPipe's mesh topology, and importing MediaPipe costs
    seconds), then cached: the arrays are shared and read-only.
    """
    mouth = _grown_region(INNER_LIPS + OUTER_LIPS, rings=2)
    eyes = np.array(sorted(set(RIGHT_EYE_UPPER + RIGHT_EYE_LOWER + LEFT_EYE_UPPER + LEFT_EYE_LOWER
                               + RIGHT_EYE_CORNERS + LEFT_EYE_CORNERS + RIGHT_IRIS + LEFT_IRIS)))
    brows = _grown_region(RIGHT_BROW + LEFT_BROW, rings=1)
    brows = np.setdiff1d(brows, eyes)
    parts = {"mouth": mouth, "eyes": eyes, "brows": brows}
    for a in parts.values():
        a.setflags(write=False)
    return parts
