"""The avatar: loaded, checked and analysed once (landmarks, rig, colours); reused every frame."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .background import BackgroundPlate, build_background
from .framing import Framing, place_in_frame
from .errors import AvatarError
from .landmarks import CHEEKS, INNER_LIPS
from .mouth import polygon_area
from .retarget import AvatarFace
from .rig import DEFAULT_GRID_SIZE, WarpRig, build_rig
from .tracking import FaceObservation, detect_largest_face

MIN_FACE_PIXELS = 80
MAX_FACE_YAW_DEGREES = 50.0
DEFAULT_FRAMING = Framing(512, 512, mode="fill")
# Far above any portrait's need (the output is framed to at most 4096x4096), and far below
# what decoding and MediaPipe cope with (a 900 MP image crashed it).
MAX_IMAGE_PIXELS = 40_000_000
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class Avatar:
    """An avatar prepared for one output framing: everything per-frame work needs."""

    name: str
    path: Path | None
    image: np.ndarray  # BGR uint8, already at output size (framed once, when loaded)
    face: AvatarFace  # landmarks in output pixels
    rig: WarpRig
    skin_lab: tuple[np.ndarray, np.ndarray]  # mean, std of cheek colour in Lab
    mouth_area: float  # inner-lip area at rest, pixels
    # The rig crop with the person painted out, so the background stays still behind a
    # turning head; None where the person/background split is unsure (the crop warps whole).
    background: BackgroundPlate | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]


def read_image(path: Path) -> np.ndarray:
    """Any image file as BGR uint8: grayscale and RGBA (composited over white) included.

    The size is read from the file's header and checked before anything is decoded: a small
    PNG can hold a 30000x30000 all-black picture that takes gigabytes to decode and crashes
    MediaPipe.
    """
    path = Path(path)
    if not path.is_file():
        raise AvatarError(f"Avatar file {path} does not exist.", "Check the path, or pick another image.")
    header_size = image_size_from_header(path)
    if header_size is not None:
        _check_pixels(header_size, f"Avatar {path}")
    data = np.fromfile(str(path), dtype=np.uint8)  # imdecode copes with non-ASCII paths
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error:  # OpenCV's own size limit, for formats Pillow could not measure
        image = None
    if image is None:
        raise AvatarError(f"Avatar file {path} is not an image OpenCV can read.",
                          "Use a JPEG or PNG portrait with one clearly visible face.")
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(float(image.max()), 1.0))
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        image = (image[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    elif image.shape[2] == 1:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image[:, :, :3])


def load_avatar(path: Path | str, framing: Framing | None = DEFAULT_FRAMING, grid_size: int = DEFAULT_GRID_SIZE) -> Avatar:
    path = Path(path)
    return prepare_avatar(read_image(path), framing, grid_size, name=path.stem, path=path)


def prepare_avatar(image: np.ndarray, framing: Framing | None = DEFAULT_FRAMING, grid_size: int = DEFAULT_GRID_SIZE,
                   name: str = "avatar", path: Path | None = None, face: FaceObservation | None = None) -> Avatar:
    """`face`: the image's largest face when the caller has already looked for it."""
    where = f"Avatar {path}" if path else "The avatar image"
    check_image_size(image, where)
    face = face or detect_largest_face(image) or _detect_in_padded(image)
    if face is None:
        raise AvatarError(f"{where} has no face PuppetCam can animate.", _FACE_HINT)
    check_face(image, face, where)
    framed, affine = frame_image(image, framing, face.center)
    return avatar_from_landmarks(framed, to_framed(face.landmarks, affine), grid_size, name, path)


_FACE_HINT = "Use a portrait with one clearly visible human (or human-like) face, seen from the front."


def image_size_from_header(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image file's header without decoding the pixels, or None if
    Pillow does not know the format (OpenCV may still; its result is checked after decoding)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return int(img.width), int(img.height)
    except Image.DecompressionBombError:
        # Pillow refuses to even report sizes above ~179 MP; that is far over our limit anyway.
        return (MAX_IMAGE_PIXELS + 1, 1)
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def _check_pixels(size: tuple[int, int], where: str) -> None:
    w, h = size
    if w * h > MAX_IMAGE_PIXELS:
        shown = f"{w}x{h} pixels" if h > 1 else "more than 179 megapixels"
        raise AvatarError(f"{where} is {shown}, over the {MAX_IMAGE_PIXELS // 1_000_000} megapixel limit.",
                          "Scale it down (e.g. to 2000 pixels on the longer side) and try again.")


def check_image_size(image: np.ndarray, where: str) -> None:
    _check_pixels((image.shape[1], image.shape[0]), where)
    if min(image.shape[:2]) < 64:
        raise AvatarError(f"{where} is only {image.shape[1]}x{image.shape[0]} pixels.",
                          "Use an image at least 256 pixels on its shorter side.")


def check_face(image: np.ndarray, face: FaceObservation, where: str) -> None:
    """Raises AvatarError, naming `where` and what to do, unless `face` can be animated."""
    if not _looks_like_a_face(image, face.bbox()):
        raise AvatarError(f"{where} has no face PuppetCam can animate.", _FACE_HINT)
    if face.size < MIN_FACE_PIXELS:
        raise AvatarError(f"{where}: the face is only {face.size:.0f} pixels tall.",
                          f"Use an image where the face is at least {MIN_FACE_PIXELS} pixels tall, or crop closer to it.")
    yaw = _yaw_degrees(face.landmarks)
    if abs(yaw) > MAX_FACE_YAW_DEGREES:
        raise AvatarError(f"{where}: the face is turned {abs(yaw):.0f} degrees to the side.",
                          "Use a portrait where both eyes are visible (turned less than 50 degrees).")
    if _eyes_or_mouth_cut_off(image, face.landmarks):
        # A chin, forehead or lower lip past the edge is fine (the rig leaves those points
        # out); eyes and a mouth are what gets animated, and half of one cannot be.
        raise AvatarError(f"{where}: the face runs past the image edge (an eye or the mouth is cut off).",
                          "Use an image where both eyes and the whole mouth are inside the picture, or crop less tightly.")


def _eyes_or_mouth_cut_off(image: np.ndarray, points: np.ndarray) -> bool:
    from . import landmarks as lm

    # Whole eyes; of the mouth its corners and the upper lip (an open mouth's lower lip may
    # hang past the bottom edge of a webcam frame and still animate).
    idx = (lm.RIGHT_EYE_CORNERS + lm.RIGHT_EYE_UPPER + lm.RIGHT_EYE_LOWER + lm.LEFT_EYE_CORNERS
           + lm.LEFT_EYE_UPPER + lm.LEFT_EYE_LOWER + lm.MOUTH_CORNERS + (lm.UPPER_INNER_LIP_MID,))
    xy = points[list(idx), :2]
    h, w = image.shape[:2]
    return bool(((xy < 0) | (xy > (w - 1, h - 1))).any())


def frame_image(image: np.ndarray, framing: Framing | None, focus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image framed for output once, here, so per-frame work runs at output resolution
    and nothing is resampled twice. Returns the framed image and the 2x3 image->framed affine."""
    if framing is None:
        return image, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return place_in_frame(image, framing, tuple(focus))


def to_framed(landmarks: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Landmarks (x, y, z) mapped by a framing affine (a scale and a shift; z scales with x)."""
    pts = landmarks.astype(np.float64).copy()
    pts[:, 0] = pts[:, 0] * affine[0, 0] + affine[0, 2]
    pts[:, 1] = pts[:, 1] * affine[1, 1] + affine[1, 2]
    pts[:, 2] *= affine[0, 0]
    return pts


def avatar_from_landmarks(framed: np.ndarray, pts: np.ndarray, grid_size: int = DEFAULT_GRID_SIZE,
                          name: str = "avatar", path: Path | None = None, reach: float = 1.0) -> Avatar:
    """An avatar for the face at `pts` (framed pixels) in the already framed image. `reach`
    scales how far around the face the warp extends (below 1 where other faces are near)."""
    out_size = (framed.shape[1], framed.shape[0])
    rig = build_rig(pts, out_size, grid_size, reach=reach)
    return Avatar(
        name=name, path=path, image=framed, face=AvatarFace(pts, room=rig.head_room(), margin=rig.face_margin(),
                                                  reach=rig.landmark_reach(), crown=rig.crown_share()),
        rig=rig,
        skin_lab=skin_colour(framed, pts),
        mouth_area=polygon_area(pts[list(INNER_LIPS), :2]),
        background=build_background(framed, rig, pts),
    )


def skin_colour(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of the cheeks' colour in Lab (float, OpenCV's 8-bit Lab scale).

    Runs per driver frame, so only the cheeks' bounding box is converted to Lab.
    """
    cheeks = points[list(CHEEKS), :2]
    h, w = image.shape[:2]
    x0, y0 = np.clip(np.floor(cheeks.min(axis=0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(cheeks.max(axis=0)).astype(int) + 1, [x0 + 1, y0 + 1], [w, h])
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for idx in (CHEEKS[:5], CHEEKS[5:]):
        hull = cv2.convexHull((points[list(idx), :2] - (x0, y0)).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 255)
    lab = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float32)
    sel = lab[mask.ravel() > 0]
    if len(sel) < 10:
        sel = lab
    return sel.mean(axis=0), sel.std(axis=0) + 1.0


def _yaw_degrees(points: np.ndarray) -> float:
    """Yaw from the face's own depth map: the eye corners' depth difference against their spacing."""
    from .landmarks import LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS

    r, l = points[RIGHT_EYE_CORNERS[0]], points[LEFT_EYE_CORNERS[0]]
    return float(np.degrees(np.arctan2(l[2] - r[2], l[0] - r[0])))


# A face whose box covers this share of the picture's shorter side is a close crop: the
# full-range detector wants some context round a face and finds none in such a picture.
CLOSE_CROP_SHARE = 0.6
# Border added round a close crop, per side, as a share of its size: enough for both detectors
# to see a whole head (on tight_grace_hopper 0.25 gives 0.89 + 0.87, 0 gives 0.90 + nothing).
CLOSE_CROP_PAD = 0.25


@dataclass(frozen=True)
class PaddedImage:
    image: np.ndarray
    offset: tuple[int, int]  # (x, y) of the original's top-left corner in `image`


def pad_close_crop(image: np.ndarray, share: float = CLOSE_CROP_PAD) -> PaddedImage:
    """The picture inside a reflected border, blurred so that the mirrored copies of the face
    at the edges are not faces to a detector; only used to look for a face, never shown."""
    h, w = image.shape[:2]
    py, px = int(round(h * share)), int(round(w * share))
    big = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_REFLECT_101)
    blurred = cv2.GaussianBlur(big, (0, 0), max(h, w) / 25)
    keep = np.zeros(big.shape[:2], np.float32)
    keep[py:py + h, px:px + w] = 1.0
    keep = cv2.GaussianBlur(keep, (0, 0), max(h, w) / 50)[..., None]
    out = (big.astype(np.float32) * keep + blurred.astype(np.float32) * (1.0 - keep)).astype(np.uint8)
    return PaddedImage(out, (px, py))


def _detect_in_padded(image: np.ndarray) -> FaceObservation | None:
    """The face of a picture it fills, found with a border round it (landmarks in the
    original's pixels). The mesh's short-range detector misses some such faces."""
    padded = pad_close_crop(image)
    face = detect_largest_face(padded.image)
    if face is None:
        return None
    pts = face.landmarks.copy()
    pts[:, :2] -= padded.offset
    return FaceObservation(pts, (image.shape[1], image.shape[0]))


def _looks_like_a_face(image: np.ndarray, bbox: tuple[float, float, float, float]) -> bool:
    """Two MediaPipe detectors (short and full range) must agree that a face is there; on a
    close crop they may agree on the picture inside a border (`pad_close_crop`).

    The face mesh alone fits a mesh to a dog's head; on the real portraits and animals in the
    test footage the summed detector scores split cleanly (portraits >= 1.4, animals <= 0.8).
    """
    if _detectors_agree(image, bbox):
        return True
    h, w = image.shape[:2]
    if max(bbox[2] - bbox[0], bbox[3] - bbox[1]) < CLOSE_CROP_SHARE * min(h, w):
        return False
    padded = pad_close_crop(image)
    dx, dy = padded.offset
    return _detectors_agree(padded.image, (bbox[0] + dx, bbox[1] + dy, bbox[2] + dx, bbox[3] + dy))


def _detectors_agree(image: np.ndarray, bbox: tuple[float, float, float, float]) -> bool:
    import mediapipe as mp

    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    total = 0.0
    for model in (0, 1):
        with mp.solutions.face_detection.FaceDetection(model_selection=model, min_detection_confidence=0.3) as det:
            result = det.process(rgb)
        h, w = image.shape[:2]
        best = 0.0
        for d in result.detections or ():
            b = d.location_data.relative_bounding_box
            cx, cy = (b.xmin + b.width / 2) * w, (b.ymin + b.height / 2) * h
            if bbox[0] <= cx <= bbox[2] and bbox[1] <= cy <= bbox[3]:
                best = max(best, float(d.score[0]))
        total += best
    return total >= 1.1
