"""DIR/summary.json: the run's headline numbers for scripts, as one flat object of dotted keys.

Flat dotted keys ("self.l1", "warp.pop_p95") rather than nested objects, so a script reads one
number with `json.load(f)["self.l1"]` and two runs diff line by line. Every key is always present;
a number that could not be measured (nothing scored, a part skipped, not implemented yet) is
null, never NaN, which is not valid JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .reenactment import CrossResult, MemoryProbe, SelfResult
from .report import (MIN_EYE_REQUEST, MIN_MOUTH_REQUEST, _mean, cross_summary, pooled_gain, self_summary,
                     speed_summary)
from .warp import warp_summary

SUMMARY_VERSION = 1
KEYS: tuple[str, ...] = (
    "self.l1", "self.psnr", "self.ssim", "self.akd", "self.still_l1", "self.still_ssim", "self.still_akd",
    "self.neutral_start_err",
    "cross.expr_err_pct", "cross.pose_err_deg", "cross.mouth_gain", "cross.eye_gain",
    "cross.gaze_gain_x", "cross.gaze_gain_y", "cross.gaze_corr_x", "cross.gaze_corr_y", "cross.blink_asymmetry",
    "cross.mouth_interior_delta_e",
    "warp.fold_frames_pct", "warp.fold_pixels_max_pct", "warp.stretch_pixels_p95_pct",
    "warp.duplicated_pixels_max_pct", "warp.pop_p95",
    "stability.jitter_pct", "stability.flicker",
    "speed.fps_512",
)
# Reserved for measures still to be written: present (null) so scripts can rely on the key set.
NOT_MEASURED_YET: tuple[str, ...] = ()
# Eye and mouth details (issue 11): means over the cross pairs that could measure them.
FACE_DETAIL_KEYS = ("gaze_gain_x", "gaze_gain_y", "gaze_corr_x", "gaze_corr_y", "blink_asymmetry",
                    "mouth_interior_delta_e")


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def summarise(selfs: list[SelfResult], crosses: list[CrossResult]) -> dict:
    """The flat summary. self.* are means over the self-reenactment clips, cross.* means over the
    pairs (mouth and eye gains pooled over every scored frame, as in the report's headline);
    warp.* are pooled over every frame of every run, self and cross (a max is the worst frame
    of the whole run); stability.* and speed.* come from the cross-reenactment runs at the
    app's 512x512 default."""
    ok_self = [r for r in selfs if r.status == "ok"]
    ok_cross = [r for r in crosses if r.status == "ok"]
    ss = [self_summary(r) for r in ok_self]
    cs = [cross_summary(r) for r in ok_cross]
    ws = warp_summary([f for r in ok_self + ok_cross for f in r.warp])
    stab = [r.stability for r in ok_cross if r.stability]
    speed = speed_summary(ok_cross)
    out: dict[str, float | None] = {
        "self.l1": _mean(s["L1"] for s in ss), "self.psnr": _mean(s["PSNR"] for s in ss),
        "self.ssim": _mean(s["SSIM"] for s in ss), "self.akd": _mean(s["AKD"] for s in ss),
        "self.still_l1": _mean(s["base L1"] for s in ss), "self.still_ssim": _mean(s["base SSIM"] for s in ss),
        "self.still_akd": _mean(s["base AKD"] for s in ss),
        # One clip per run measures it (the first that runs): a mean over the ones that did.
        "self.neutral_start_err": _mean(r.neutral_start_err for r in ok_self if math.isfinite(r.neutral_start_err)),
        "cross.expr_err_pct": _mean(c["expr"] for c in cs), "cross.pose_err_deg": _mean(c["pose"] for c in cs),
        "cross.mouth_gain": pooled_gain(ok_cross, "mouth_open_out", "mouth_open_req", MIN_MOUTH_REQUEST),
        "cross.eye_gain": pooled_gain(ok_cross, "eye_open_out", "eye_open_req", MIN_EYE_REQUEST),
        "warp.fold_frames_pct": ws["fold_frames_pct"], "warp.fold_pixels_max_pct": ws["fold_pixels_max_pct"],
        "warp.stretch_pixels_p95_pct": ws["stretch_pixels_p95_pct"],
        "warp.duplicated_pixels_max_pct": ws["duplicated_pixels_max_pct"], "warp.pop_p95": ws["pop_p95"],
        "stability.jitter_pct": _mean(s.jitter_output for s in stab),
        "stability.flicker": _mean(s.flicker_output for s in stab),
        "speed.fps_512": speed.get("fps", {}).get("process", math.nan),
    }
    for key in FACE_DETAIL_KEYS:
        vals = [r.face_details.get(key, math.nan) for r in ok_cross]
        out[f"cross.{key}"] = _mean(v for v in vals if math.isfinite(v))
    return {k: _num(out.get(k)) for k in KEYS}


def write_summary(path: Path, selfs: list[SelfResult], crosses: list[CrossResult],
                  probe: MemoryProbe | None = None, meta: dict | None = None) -> Path:
    """summary.json: the flat numbers, then `meta` (run facts: command, commit, settings) under
    the one non-dotted key "meta", so that the dotted keys stay all numbers."""
    data: dict = summarise(selfs, crosses)
    data["meta"] = {"summary_version": SUMMARY_VERSION, "layout": "flat dotted keys",
                    "peak_rss_mib": _num(probe.peak_rss_mib) if probe else None, **(meta or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path
