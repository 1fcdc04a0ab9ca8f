"""Track: MediaPipe face mesh (478 landmarks with iris) on BGR frames."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .landmarks import FACE_OVAL, NUM_LANDMARKS


@dataclass(frozen=True)
class FaceObservation:
    """One face in one image. Landmarks are (478, 3) float32 in pixels; z uses the x scale
    (MediaPipe reports z relative to the image width), smaller z is nearer the camera."""

    landmarks: np.ndarray
    image_size: tuple[int, int]  # (width, height)

    @property
    def center(self) -> np.ndarray:
        return self.landmarks[list(FACE_OVAL), :2].mean(axis=0)

    @property
    def size(self) -> float:
        """Face size in pixels: the larger side of the face-oval bounding box."""
        oval = self.landmarks[list(FACE_OVAL), :2]
        return float((oval.max(axis=0) - oval.min(axis=0)).max())

    def bbox(self) -> tuple[float, float, float, float]:
        oval = self.landmarks[list(FACE_OVAL), :2]
        (x0, y0), (x1, y1) = oval.min(axis=0), oval.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)


@dataclass(frozen=True)
class TrackerSettings:
    max_faces: int = 1
    static_images: bool = False  # True for avatars: detect afresh on each image, no tracking
    # Real faces score 0.85-0.97 with MediaPipe's short-range detector; a dog's head 0.72. A
    # stricter threshold keeps pets and posters from driving the avatar.
    min_detection_confidence: float = 0.75
    min_tracking_confidence: float = 0.5


class FaceTracker:
    """MediaPipe's legacy face-mesh solution: its models ship inside the 0.10.21 wheel, so it
    works offline (the Tasks API would need a downloaded .task file)."""

    def __init__(self, settings: TrackerSettings = TrackerSettings()) -> None:
        import mediapipe as mp

        self.settings = settings
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=settings.static_images,
            max_num_faces=settings.max_faces,
            refine_landmarks=True,
            min_detection_confidence=settings.min_detection_confidence,
            min_tracking_confidence=settings.min_tracking_confidence,
        )

    def detect(self, image_bgr: np.ndarray) -> list[FaceObservation]:
        h, w = image_bgr.shape[:2]
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        rgb.flags.writeable = False
        result = self._mesh.process(rgb)
        faces: list[FaceObservation] = []
        for face in result.multi_face_landmarks or ():
            pts = np.array([(p.x * w, p.y * h, p.z * w) for p in face.landmark], dtype=np.float32)
            if len(pts) == NUM_LANDMARKS:
                faces.append(FaceObservation(pts, (w, h)))
        return faces

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> "FaceTracker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def detect_faces_still(image_bgr: np.ndarray, max_faces: int = 4, enough: int | None = None) -> list[FaceObservation]:
    """Best-effort detection of the faces on a still image (avatars, group portraits), largest
    first.

    The face-mesh detector is a short-range model: it misses small faces in large paintings.
    While it finds fewer than `enough` (default: `max_faces`), faces it missed inside the boxes
    of MediaPipe's full-range face detector are found by running the mesh again on a crop
    around each box.
    """
    h, w = image_bgr.shape[:2]
    with FaceTracker(TrackerSettings(max_faces=max_faces, static_images=True)) as tracker:
        faces = tracker.detect(image_bgr)
        if len(faces) < (max_faces if enough is None else enough):
            for x0, y0, x1, y1 in _face_boxes_full_range(image_bgr):
                if any(x0 <= f.center[0] <= x1 and y0 <= f.center[1] <= y1 for f in faces):
                    continue  # already found by the mesh
                for f in tracker.detect(image_bgr[y0:y1, x0:x1])[:1]:
                    pts = f.landmarks.copy()
                    pts[:, :2] += (x0, y0)
                    faces.append(FaceObservation(pts, (w, h)))
    return sorted(faces, key=lambda f: f.size, reverse=True)[:max_faces]


def detect_largest_face(image_bgr: np.ndarray) -> FaceObservation | None:
    # One face is enough: the full-range search runs only when the mesh finds none.
    faces = detect_faces_still(image_bgr, enough=1)
    return faces[0] if faces else None


def _face_boxes_full_range(image_bgr: np.ndarray) -> list[tuple[int, int, int, int]]:
    import mediapipe as mp

    h, w = image_bgr.shape[:2]
    boxes = []
    with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as det:
        result = det.process(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
        for d in result.detections or ():
            b = d.location_data.relative_bounding_box
            cx, cy = (b.xmin + b.width / 2) * w, (b.ymin + b.height / 2) * h
            half = max(b.width * w, b.height * h) * 1.2
            x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
            x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
            if x1 - x0 > 16 and y1 - y0 > 16:
                boxes.append((x0, y0, x1, y1))
    return boxes
