"""Which driver face drives which avatar face, stable from frame to frame.

MediaPipe lists faces in no stable order, so detection order cannot decide. Each avatar face
is a *slot*; each person in the camera is a *track*. A track is matched to its slot frame by
frame by where it is (with its velocity) and what it looks like (colour histograms of the face
and of the clothes below it), with hysteresis:

- a track seen a moment ago is followed by position (appearance only breaks ties), so a head
  turn or a lighting change never loses it;
- a track that was lost (turned away, walked out, hidden by the other person crossing) is
  taken back only by a face that looks like it, wherever that face shows up;
- a slot stays reserved for its person for `keep_seconds` after they leave (their avatar eases
  back to neutral meanwhile): a newcomer does not steal it, but takes a free slot if there is one;
- a newcomer takes the free slot whose avatar face sits where they sit in the frame (the
  person on the left drives the face on the left), or the one `order` names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from .tracking import FaceObservation

_INFEASIBLE = 1e6
_UNMATCHED = 10.0  # above any feasible match: matching as many faces as possible comes first
_APPEARANCE_WEIGHT = 8.0  # a swap of two people (0.3 apart in appearance) outweighs their jump across the frame
_HIST_BINS = (16, 8)  # hue, saturation: lighting moves value, not these


@dataclass(frozen=True)
class AssignSettings:
    # A face followed frame to frame moves less than this many face sizes per frame.
    max_step: float = 0.8
    # Bhattacharyya distance between a track's (averaged) appearance and a face, below which
    # the face is taken for that person coming back. Measured on the 11 single-person clips of
    # ../shared/data (150 frames each): a person against their own frames, median 0.03-0.09
    # (0.19 under strong light changes); against another person's, median 0.19-0.6, under 0.3
    # for 7% of pairs. Colour cannot tell look-alikes in look-alike clothes apart; position
    # still follows them while they are in view.
    same_person: float = 0.22
    recent_seconds: float = 0.3  # seen this recently: followed by position
    keep_seconds: float = 2.5  # a slot stays its person's this long after they leave
    # The k-th person to arrive drives avatar face order[k] (0-based, wrapping); None: by position.
    order: tuple[int, ...] | None = None


def appearance(image: np.ndarray, face: FaceObservation) -> np.ndarray:
    """Hue-saturation histograms of the face and of the torso below it, each summing to 1."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = face.bbox()
    s = face.size
    cx = (x0 + x1) / 2
    boxes = [(x0 + 0.15 * s, y0 + 0.1 * s, x1 - 0.15 * s, y1 - 0.1 * s),  # skin, not background
             (cx - 0.6 * s, y1 + 0.25 * s, cx + 0.6 * s, y1 + 1.1 * s)]  # clothes
    hists = []
    for bx0, by0, bx1, by1 in boxes:
        bx0, bx1 = int(np.clip(bx0, 0, w)), int(np.clip(bx1, 0, w))
        by0, by1 = int(np.clip(by0, 0, h)), int(np.clip(by1, 0, h))
        hist = np.zeros(_HIST_BINS, np.float32)
        if bx1 - bx0 >= 4 and by1 - by0 >= 4:
            hsv = cv2.cvtColor(image[by0:by1, bx0:bx1], cv2.COLOR_BGR2HSV)
            hist = cv2.calcHist([hsv], [0, 1], None, list(_HIST_BINS), [0, 180, 0, 256])
        hists.append(hist.ravel() / max(float(hist.sum()), 1.0))
    return np.concatenate(hists).astype(np.float32)


def appearance_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance in [0, 1], averaged over the face and torso parts that both have."""
    n = _HIST_BINS[0] * _HIST_BINS[1]
    ds = []
    for part in (slice(0, n), slice(n, 2 * n)):
        pa, pb = a[part], b[part]
        if pa.sum() > 0 and pb.sum() > 0:
            ds.append(cv2.compareHist(pa, pb, cv2.HISTCMP_BHATTACHARYYA))
    return float(np.mean(ds)) if ds else 1.0


@dataclass
class Track:
    person: int  # 1, 2, ... in order of first arrival: what the user sees as "person 1"
    center: np.ndarray
    size: float
    look: np.ndarray
    last_seen: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def update(self, face: FaceObservation, look: np.ndarray, t: float) -> None:
        dt = t - self.last_seen
        if 0 < dt < 0.2:
            self.velocity = 0.5 * self.velocity + 0.5 * (face.center - self.center) / dt
        else:
            self.velocity = np.zeros(2)
        self.center, self.size, self.last_seen = face.center.astype(np.float64), face.size, t
        # Appearance drifts slowly (light, pose); a slow average also shrugs off one bad frame.
        self.look = 0.95 * self.look + 0.05 * look


class FaceAssigner:
    """Slots are avatar faces, at normalised horizontal positions `slot_x` (0 left, 1 right)."""

    def __init__(self, slot_x: Sequence[float], settings: AssignSettings = AssignSettings(),
                 on_change: Callable[[str], None] | None = None) -> None:
        self.slot_x = np.asarray(slot_x, dtype=np.float64)
        self.settings = settings
        self.on_change = on_change
        self.tracks: list[Track | None] = [None] * len(self.slot_x)
        self._people = 0
        self._now = 0.0

    def reset(self) -> None:
        self.tracks = [None] * len(self.slot_x)
        self._people = 0

    def in_use(self, slot: int, t: float) -> bool:
        tr = self.tracks[slot]
        return tr is not None and t - tr.last_seen <= self.settings.keep_seconds

    def people(self) -> list[int | None]:
        """The person number each slot is kept for (driving it, or away for a moment), None
        where the slot is free."""
        return [tr.person if self.in_use(i, self._now) else None for i, tr in enumerate(self.tracks)]

    def swap(self, a: int, b: int) -> None:
        """The user reassigns: the people on slots a and b trade avatar faces."""
        self.tracks[a], self.tracks[b] = self.tracks[b], self.tracks[a]
        self._say(f"swapped: avatar face {a + 1} and avatar face {b + 1}")

    def update(self, faces: Sequence[FaceObservation], image: np.ndarray, t: float) -> list[FaceObservation | None]:
        """This frame's faces -> the face driving each slot (None: nobody drives it now)."""
        s = self.settings
        self._now = t
        looks = [appearance(image, f) for f in faces]
        out: list[FaceObservation | None] = [None] * len(self.tracks)
        matched = self._match(faces, looks, t)
        for d, slot in matched.items():
            self.tracks[slot].update(faces[d], looks[d], t)  # type: ignore[union-attr]
            out[slot] = faces[d]
        newcomers = sorted((d for d in range(len(faces)) if d not in matched), key=lambda d: faces[d].center[0])
        width = float(image.shape[1])
        for d in newcomers:
            slot = self._slot_for_newcomer(faces[d], looks[d], width, t)
            if slot is None:
                continue  # every avatar face is someone's: the newcomer waits
            old = self.tracks[slot]
            if old is not None and appearance_distance(old.look, looks[d]) < s.same_person:
                person, note = old.person, "is back on"
            else:
                self._people += 1
                person, note = self._people, "drives"
            self.tracks[slot] = Track(person, faces[d].center.astype(np.float64), faces[d].size, looks[d], t)
            out[slot] = faces[d]
            self._say(f"person {person} {note} avatar face {slot + 1}")
        return out

    def _match(self, faces: Sequence[FaceObservation], looks: list[np.ndarray], t: float) -> dict[int, int]:
        """Detections -> slots with a live track: minimum total cost, any match optional."""
        s = self.settings
        live = [i for i in range(len(self.tracks)) if self.in_use(i, t)]
        if not faces or not live:
            return {}
        n = len(faces)
        cost = np.full((n, len(live) + n), _INFEASIBLE)
        cost[np.arange(n), len(live) + np.arange(n)] = _UNMATCHED
        for d, (f, look) in enumerate(zip(faces, looks)):
            for j, slot in enumerate(live):
                tr = self.tracks[slot]
                dt = t - tr.last_seen
                step = np.linalg.norm(f.center - (tr.center + tr.velocity * min(dt, 0.2))) / max(tr.size, f.size)
                differ = appearance_distance(tr.look, look)
                looks_alike = differ < s.same_person
                if dt <= s.recent_seconds and (step <= s.max_step or looks_alike):
                    # Followed by position; appearance weighs in where positions mislead (two
                    # people trading places in one frame, as a camera cut shows them).
                    cost[d, j] = step + _APPEARANCE_WEIGHT * differ
                elif looks_alike:
                    cost[d, j] = _APPEARANCE_WEIGHT * differ + 0.1 * min(step, 5.0)
        rows, cols = linear_sum_assignment(cost)
        return {int(d): live[int(j)] for d, j in zip(rows, cols) if j < len(live) and cost[d, j] < _INFEASIBLE}

    def _slot_for_newcomer(self, face: FaceObservation, look: np.ndarray, width: float, t: float) -> int | None:
        s = self.settings
        free = [i for i in range(len(self.tracks)) if not self.in_use(i, t)]
        if not free:
            return None
        # A person who was here before gets their own avatar face back.
        known = [(appearance_distance(self.tracks[i].look, look), i) for i in free if self.tracks[i] is not None]
        if known and min(known)[0] < s.same_person:
            return min(known)[1]
        if s.order:
            wanted = s.order[self._people % len(s.order)]
            if wanted in free:
                return wanted
        x = face.center[0] / max(width, 1.0)
        return min(free, key=lambda i: abs(self.slot_x[i] - x))

    def _say(self, text: str) -> None:
        if self.on_change is not None:
            self.on_change(text)


class SoleDriver:
    """The assignment for a cast of one: whoever the tracker sees drives it, at once. With one
    avatar face there is nobody to keep it for, and a cut or a new person must drive it without
    the wait a slot keeps for someone who left (the tracker follows one face only)."""

    def __init__(self) -> None:
        self._driven = False

    def reset(self) -> None:
        self._driven = False

    def people(self) -> list[int | None]:
        return [1 if self._driven else None]

    def swap(self, a: int, b: int) -> None:
        pass  # one face: nothing to trade

    def update(self, faces: Sequence[FaceObservation], image: np.ndarray, t: float) -> list[FaceObservation | None]:
        self._driven = bool(faces)
        return [faces[0] if faces else None]


def assigner_for(slot_x: Sequence[float], settings: AssignSettings = AssignSettings(),
                 on_change: Callable[[str], None] | None = None) -> FaceAssigner | SoleDriver:
    """Slots kept for people when there are several avatar faces to keep apart; one face is
    simply driven by whoever is there."""
    return FaceAssigner(slot_x, settings, on_change) if len(slot_x) > 1 else SoleDriver()
