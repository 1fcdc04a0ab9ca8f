"""Head pose from landmarks: similarity fits between landmark sets and Euler angles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Similarity:
    """dst ≈ scale * rotation @ src + translation (row vectors: src @ R.T * s + t)."""

    scale: float
    rotation: np.ndarray  # (3, 3) or (2, 2)
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        return (points @ self.rotation.T) * self.scale + self.translation

    def inverse_apply(self, points: np.ndarray) -> np.ndarray:
        return ((points - self.translation) / self.scale) @ self.rotation


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> Similarity:
    """Least-squares similarity (Umeyama 1991) mapping src to dst, in 2-D or 3-D.

    Written out because it is ten lines of SVD; OpenCV's estimateAffinePartial2D is 2-D only
    and RANSAC-based, which adds frame-to-frame jitter here.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    d = np.ones(len(sigma))
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rotation = u @ np.diag(d) @ vt
    var_s = (xs**2).sum() / len(src)
    scale = float((sigma * d).sum() / var_s) if var_s > 0 else 1.0
    translation = mu_d - scale * rotation @ mu_s
    return Similarity(scale, rotation, translation)


def rotation_to_euler(rotation: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees for image axes (x right, y down, z into the scene):
    yaw about y, pitch about x, roll about z, composed R = Rz(roll) @ Ry(yaw) @ Rx(pitch)."""
    r = rotation
    yaw = np.arcsin(np.clip(-r[2, 0], -1.0, 1.0))
    pitch = np.arctan2(r[2, 1], r[2, 2])
    roll = np.arctan2(r[1, 0], r[0, 0])
    return np.degrees([yaw, pitch, roll])


def euler_to_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = np.radians([yaw, pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.Rodrigues(np.asarray(rotvec, dtype=np.float64).reshape(3, 1))[0]


def matrix_to_rotvec(rotation: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.Rodrigues(np.asarray(rotation, dtype=np.float64))[0].ravel()
