"""The report: markdown tables, matplotlib plots, contact sheets, and the history of runs."""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from pathlib import Path
import re

import cv2
import numpy as np

from . import metrics as M
from .reenactment import CrossResult, MemoryProbe, Moment, SelfResult
from .warp import by_yaw, warp_summary, worst_sheet

HISTORY_BEGIN = "<!-- history:begin -->"
HISTORY_END = "<!-- history:end -->"
# Hand-written findings (failure modes, fixes, before/after numbers) between these markers are
# carried over verbatim from the previous report, like the history rows.
FINDINGS_BEGIN = "<!-- findings:begin -->"
FINDINGS_END = "<!-- findings:end -->"
# The version of the metric definitions: bump it when a number is measured differently, so that
# the history shows which rows compare.
# 2: folds measured on the final sampling map (app.warp_quality), not on the landmark mesh.
# 3: vertical gaze against the eye corners' line, not the lids' midline.
HARNESS_VERSION = "3"
HISTORY_COLUMNS = ("run (UTC)", "commit", "harness", "self L1", "PSNR", "SSIM", "AKD", "expr err %", "mouth gain", "eye gain",
                   "pose err °", "id dist", "face found %", "fold frames %", "dup max %", "jitter %", "flicker", "fps @512", "peak MiB",
                   "runtime s")

# Published numbers on VoxCeleb (256x256), for placing ours. Different footage: indicative only.
LITERATURE = (
    ("FOMM, own paper (Siarohin et al. 2019)", {"L1": 0.043, "AKD": 1.29}),
    ("FOMM, re-evaluated (Wang et al. 2021, face-vid2vid)", {"L1": 0.0451, "PSNR": 23.4, "SSIM": 0.752, "AKD": 1.456}),
    ("face-vid2vid (Wang et al. 2021)", {"L1": 0.0456}),
)


@dataclass
class RunInfo:
    command: str
    folders: list[str]
    started_utc: str
    commit: str
    runtime_s: float
    settings: dict
    versions: dict[str, str]
    identity_model: str | None
    identity_missing: str | None
    cpu: str
    load: str = ""
    notes: list[str] = field(default_factory=list)


def fmt(x: float | None, digits: int = 2, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "∞" if x == math.inf else "–"
    return f"{x:.{digits}f}{unit}"


def _mean(values) -> float:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else math.nan


def _table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


# ------------------------------------------------------------------------------------ numbers


def self_summary(r: SelfResult) -> dict[str, float]:
    ws = warp_summary(r.warp)
    return {"fold frames": ws["fold_frames_pct"], "dup max": ws["duplicated_pixels_max_pct"], "L1": _mean(r.l1), "PSNR": _mean(r.psnr), "SSIM": _mean(r.ssim), "AKD": _mean(r.akd),
            "MKR": r.missed / len(r.sampled) if r.sampled else math.nan,
            "base L1": _mean(r.base_l1), "base PSNR": _mean(r.base_psnr), "base SSIM": _mean(r.base_ssim),
            "base AKD": _mean(r.base_akd),
            "mouth open gain": _gain(r.mouth_open_out, r.mouth_open_real, MIN_MOUTH_REQUEST),
            "eye open gain": _gain(r.eye_open_out, r.eye_open_real, MIN_EYE_REQUEST)}


# A gain is only meaningful where the clip asks for the motion: below these requested changes
# (% of face size, largest over the scored frames) it is left out ("–").
MIN_MOUTH_REQUEST = 1.5
MIN_EYE_REQUEST = 1.0


def _gain(achieved, requested, minimum: float) -> float:
    if not requested or max(abs(x) for x in requested) < minimum:
        return math.nan
    return M.transfer_gain(achieved, requested)


def pooled_gain(results, out_key: str, req_key: str, minimum: float) -> float:
    """One least-squares gain over every scored frame of the pairs that ask for the motion."""
    a, r = [], []
    for x in results:
        req = getattr(x, req_key)
        if req and max(abs(v) for v in req) >= minimum:
            a += list(getattr(x, out_key))
            r += list(req)
    return M.transfer_gain(a, r) if r else math.nan


def cross_summary(r: CrossResult) -> dict[str, float]:
    parts = {p: M.transfer_gain(np.concatenate(r.achieved_parts[p]), np.concatenate(r.requested_parts[p]))
             if r.achieved_parts.get(p) else math.nan for p in ("mouth", "eyes", "brows")}
    eul = np.array(r.euler_error) if r.euler_error else np.full((1, 3), np.nan)
    return {
        "found": float(np.mean(r.detected)) * 100 if r.detected else math.nan,
        "expr": _mean(r.expr_error), "expr p95": M.summary(r.expr_error)["p95"],
        "mouth": _mean(r.expr_mouth), "eyes": _mean(r.expr_eyes), "brows": _mean(r.expr_brows),
        "still": _mean(r.expr_requested), "landmarks": _mean(r.landmark_error),
        "gain mouth": parts["mouth"], "gain eyes": parts["eyes"], "gain brows": parts["brows"],
        "mouth open gain": _gain(r.mouth_open_out, r.mouth_open_req, MIN_MOUTH_REQUEST),
        "mouth open corr": M.correlation(r.mouth_open_out, r.mouth_open_req),
        "eye open gain": _gain(r.eye_open_out, r.eye_open_req, MIN_EYE_REQUEST),
        "eye open corr": M.correlation(r.eye_open_out, r.eye_open_req),
        "mouth req max": max(r.mouth_open_req, default=math.nan),
        "pose": _mean(r.pose_error), "pose p95": M.summary(r.pose_error)["p95"],
        "pose req": _mean(r.pose_requested), "pose req max": max(r.pose_requested, default=math.nan),
        "yaw": float(np.nanmean(eul[:, 0])), "pitch": float(np.nanmean(eul[:, 1])), "roll": float(np.nanmean(eul[:, 2])),
        "id": _mean(r.identity), "id max": max(r.identity, default=math.nan),
        "id same": float(np.mean(np.array(r.identity) < 0.6)) * 100 if r.identity else math.nan,
        "id driver": r.identity_driver,
    }


def speed_summary(results) -> dict[str, dict[str, float]]:
    keys = ("decode", "track", "retarget", "render", "process")
    merged = {k: [x for r in results for x in r.speed.get(k, [])] for k in keys}
    out = {k: M.summary(v) for k, v in merged.items()}
    proc = out["process"]["mean"]
    total = proc + out["decode"]["mean"]
    out["fps"] = {"process": 1000.0 / proc if proc else math.nan, "end_to_end": 1000.0 / total if total else math.nan,
                  "frames": len(merged["process"])}
    return out


def headline(selfs: list[SelfResult], crosses: list[CrossResult], speed_cross: dict, run: RunInfo,
             probe: MemoryProbe | None = None) -> dict[str, str]:
    ss = [self_summary(r) for r in selfs if r.status == "ok"]
    cs = [cross_summary(r) for r in crosses if r.status == "ok"]
    all_warp = warp_summary([f for r in crosses if r.status == "ok" for f in r.warp])
    stab = [r.stability for r in crosses if r.status == "ok" and r.stability]
    return {
        "run (UTC)": run.started_utc, "commit": run.commit, "harness": HARNESS_VERSION,
        "self L1": fmt(_mean(s["L1"] for s in ss), 4), "PSNR": fmt(_mean(s["PSNR"] for s in ss), 2),
        "SSIM": fmt(_mean(s["SSIM"] for s in ss), 3), "AKD": fmt(_mean(s["AKD"] for s in ss), 2),
        "expr err %": fmt(_mean(c["expr"] for c in cs), 2),
        "mouth gain": fmt(pooled_gain([r for r in crosses if r.status == "ok"], "mouth_open_out", "mouth_open_req", MIN_MOUTH_REQUEST), 2),
        "eye gain": fmt(pooled_gain([r for r in crosses if r.status == "ok"], "eye_open_out", "eye_open_req", MIN_EYE_REQUEST), 2),
        "pose err °": fmt(_mean(c["pose"] for c in cs), 2), "id dist": fmt(_mean(c["id"] for c in cs), 3),
        "face found %": fmt(_mean(c["found"] for c in cs), 1),
        "fold frames %": fmt(all_warp["fold_frames_pct"], 1), "dup max %": fmt(all_warp["duplicated_pixels_max_pct"], 2),
        "jitter %": fmt(_mean(s.jitter_output for s in stab), 3), "flicker": fmt(_mean(s.flicker_output for s in stab), 3),
        "fps @512": fmt(speed_cross.get("fps", {}).get("process", math.nan), 1),
        "peak MiB": fmt(probe.peak_rss_mib if probe else math.nan, 0), "runtime s": fmt(run.runtime_s, 0),
    }


# ------------------------------------------------------------------------------------ history


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def read_history(report: Path) -> list[str]:
    """The rows of an earlier report's history block, oldest first, re-laid onto today's columns
    by column name (a column an old run did not have reads "–"; one it had and we dropped is
    left out), so the block stays a valid table when the headline gains a number."""
    if not report.is_file():
        return []
    text = report.read_text(encoding="utf-8")
    m = re.search(re.escape(HISTORY_BEGIN) + r"(.*?)" + re.escape(HISTORY_END), text, re.S)
    if not m:
        return []
    lines = [ln.strip() for ln in m.group(1).splitlines() if ln.strip().startswith("|")]
    if len(lines) < 2:
        return []
    header = _cells(lines[0])
    rows = []
    for line in lines[1:]:
        if re.fullmatch(r"\|[\s|:-]*\|", line):
            continue
        values = dict(zip(header, _cells(line)))
        rows.append("| " + " | ".join(values.get(c, "–") or "–" for c in HISTORY_COLUMNS) + " |")
    return rows


def read_findings(report: Path) -> str:
    """The hand-written findings block of an earlier report, markers included ("" if none)."""
    if not report.is_file():
        return ""
    text = report.read_text(encoding="utf-8")
    m = re.search(re.escape(FINDINGS_BEGIN) + r".*?" + re.escape(FINDINGS_END), text, re.S)
    return m.group(0) if m else ""


def history_block(old_rows: list[str], new: dict[str, str]) -> str:
    row = "| " + " | ".join(new.get(c, "–") for c in HISTORY_COLUMNS) + " |"
    header = "| " + " | ".join(HISTORY_COLUMNS) + " |\n|" + "|".join("---" for _ in HISTORY_COLUMNS) + "|"
    return "\n".join([HISTORY_BEGIN, header, *old_rows, row, HISTORY_END])


# ------------------------------------------------------------------------------------ images


def contact_sheet(moments: list[Moment], title: str, rows: tuple[str, str] = ("driver", "output"),
                  diff: bool = False) -> np.ndarray:
    """Columns are moments; rows: driver (or real frame), output, and optionally |difference|."""
    t = moments[0].driver.shape[0] if moments else 128
    n = max(1, len(moments))
    label_h, title_h, side_w = 30, 22, 56
    nrows = 3 if diff else 2
    sheet = np.full((title_h + nrows * t + label_h, side_w + n * t, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(sheet, title, (4, 15), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    names = list(rows) + (["|diff|x4"] if diff else [])
    for r, name in enumerate(names):
        cv2.putText(sheet, name, (3, title_h + r * t + t // 2 + 4), font, 0.36, (0, 0, 0), 1, cv2.LINE_AA)
    for i, m in enumerate(moments):
        x = side_w + i * t
        sheet[title_h:title_h + t, x:x + t] = m.driver
        sheet[title_h + t:title_h + 2 * t, x:x + t] = m.output
        if diff:
            d = np.clip(np.abs(m.driver.astype(np.int16) - m.output.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
            sheet[title_h + 2 * t:title_h + 3 * t, x:x + t] = d
        head, _, tail = m.label.partition(": ")
        lines = [head, tail] if tail else [m.label]
        for j, line in enumerate(lines[:2]):
            scale = 0.3 if len(line) < 26 else 0.26
            cv2.putText(sheet, line, (x + 2, title_h + nrows * t + 11 + 12 * j), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return sheet


def write_jpeg(path: Path, image: np.ndarray, quality: int = 80) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "figure.dpi": 80, "savefig.dpi": 80})
    return plt


def plot_self(selfs: list[SelfResult], path: Path) -> None:
    plt = _plt()
    ok = [r for r in selfs if r.status == "ok"]
    if not ok:
        return
    names = [r.name for r in ok]
    ss = [self_summary(r) for r in ok]
    x = np.arange(len(ok))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, key, lit in ((axes[0], "L1", (0.043, 0.0451)), (axes[1], "AKD", (1.29, 1.456)), (axes[2], "SSIM", (0.752,))):
        ax.bar(x - 0.2, [s[key] for s in ss], 0.4, label="PuppetCam")
        ax.bar(x + 0.2, [s["base " + key] for s in ss], 0.4, label="still avatar (no animation)", color="#bbbbbb")
        for v, style in zip(lit, ("--", ":")):
            ax.axhline(v, color="crimson", ls=style, lw=1, label=f"FOMM on VoxCeleb {v:g}")
        ax.set_xticks(x, names, rotation=60, ha="right")
        ax.set_title({"L1": "L1 (lower is better)", "AKD": "AKD, px at 256 (lower is better)",
                      "SSIM": "SSIM (higher is better)"}[key])
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_cross(crosses: list[CrossResult], path: Path) -> None:
    plt = _plt()
    ok = [r for r in crosses if r.status == "ok"]
    if not ok:
        return
    cs = [cross_summary(r) for r in ok]
    names = [r.slug.replace("__", "\n← ") for r in ok]
    x = np.arange(len(ok))
    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    ax = axes[0, 0]
    ax.bar(x - 0.3, [c["expr"] for c in cs], 0.2, label="all points")
    ax.bar(x - 0.1, [c["mouth"] for c in cs], 0.2, label="mouth")
    ax.bar(x + 0.1, [c["eyes"] for c in cs], 0.2, label="eyes")
    ax.bar(x + 0.3, [c["still"] for c in cs], 0.2, label="still avatar (= requested motion)", color="#bbbbbb")
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=6)
    ax.set_title("expression-transfer error, % of face size (head pose removed)")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    for r in ok:
        ax.scatter(r.mouth_open_req, r.mouth_open_out, s=8, label=r.slug)
    lim = max([1.0] + [max(r.mouth_open_req + r.mouth_open_out, default=0) for r in ok])
    ax.plot([0, lim], [0, lim], "k--", lw=0.8)
    ax.set_xlabel("requested inner-lip gap change, % face size")
    ax.set_ylabel("measured on the output")
    ax.set_title("mouth opening: asked vs shown")
    ax.legend(fontsize=5, ncol=2)
    ax = axes[1, 0]
    for r in ok:
        ax.scatter(r.pose_requested, r.pose_error, s=8)
    ax.set_xlabel("requested head rotation from neutral, degrees")
    ax.set_ylabel("head-pose error, degrees")
    ax.set_title("head pose: error against the rotation asked for")
    ax = axes[1, 1]
    data = [r.identity if r.identity else [math.nan] for r in ok]
    ax.boxplot(data, positions=x, widths=0.5)
    ax.scatter(x, [c["id driver"] for c in cs], marker="x", color="crimson", label="avatar vs the driver's own face")
    ax.axhline(0.6, color="k", ls="--", lw=0.8, label="dlib same-person threshold 0.6")
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=6)
    ax.set_title("identity: descriptor distance avatar → output")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


FACE_DETAIL_NOTE = (
    "MediaPipe on the driver and on the output's 256x256 face crop, sampled frames "
    "(`app/face_metrics.py`). Gaze: the iris centre against the eye corners, along their line (x) "
    "and across it (y; against the lids' midline, as before harness version 3, y mostly followed "
    "the lids' own opening: a stare read as a glance down), both eyes averaged, frames with both faces' eyes open; gain is the output's "
    "spread over the driver's; – where the driver's iris spreads under 0.02 (x) or 0.01 (y) eye "
    "widths (no glances to follow: a correlation there is the detector's noise). Blink asymmetry: mean |right − left| output openness (each eye "
    "against its own median) where the driver's eyes are both shut (blank: no such frame). "
    "Mouth ΔE: CIELAB distance of the output's mouth interior to the avatar's own palette (its "
    "lips, cheeks and rest interior in 12 shades each, and teeth in its light: off-whites of its "
    "cheeks' hue at 6 chromas up to the cheeks' own, 12 lightnesses up to its face's lightest; "
    "without those, from 2026-12-02 on, a closed-mouth portrait had no teeth colour at all and "
    "painted ivory teeth scored as foreign: earlier runs' ΔE do not compare). In brackets, the same against the posed "
    "landmarks the renderer was asked to draw: the difference is lost in the pixels or in the "
    "detector's reading of them.\n")


def face_detail_rows(results) -> list[list[str]]:
    """Per pair, and their mean, the eye and mouth measures of `reenactment.face_details`."""
    rows = []
    for r in results:
        d = r.face_details
        rows.append([r.name, f"{fmt(d.get('gaze_gain_x'), 2)} / {fmt(d.get('gaze_gain_y'), 2)}",
                     f"{fmt(d.get('gaze_corr_x'), 2)} / {fmt(d.get('gaze_corr_y'), 2)} "
                     f"({fmt(d.get('posed_gaze_corr_x'), 2)} / {fmt(d.get('posed_gaze_corr_y'), 2)})",
                     f"{fmt(d.get('blink_asymmetry'), 3)} ({fmt(d.get('posed_blink_asymmetry'), 3)})",
                     fmt(d.get("mouth_interior_delta_e"), 1)])
    if results:
        def mean(key: str) -> float:
            return _mean(r.face_details.get(key, math.nan) for r in results)

        rows.append(["**mean**", f"{fmt(mean('gaze_gain_x'), 2)} / {fmt(mean('gaze_gain_y'), 2)}",
                     f"{fmt(mean('gaze_corr_x'), 2)} / {fmt(mean('gaze_corr_y'), 2)} "
                     f"({fmt(mean('posed_gaze_corr_x'), 2)} / {fmt(mean('posed_gaze_corr_y'), 2)})",
                     f"{fmt(mean('blink_asymmetry'), 3)} ({fmt(mean('posed_blink_asymmetry'), 3)})",
                     fmt(mean("mouth_interior_delta_e"), 1)])
    return rows


def warp_rows(results) -> list[list[str]]:
    """Table rows of the map-quality numbers per run, with a pooled row over all of them."""
    def row(name: str, ws: dict[str, float]) -> list[str]:
        return [name, str(ws["frames"]), fmt(ws["fold_frames_pct"], 1, "%"), fmt(ws["fold_pixels_max_pct"], 3),
                fmt(ws["stretch_pixels_p95_pct"], 2), fmt(ws["duplicated_pixels_max_pct"], 3), fmt(ws["pop_p95"], 2)]

    rows = [row(f"{kind} {r.name}", warp_summary(r.warp)) for kind, r in results]
    if len(results) > 1:
        rows.append(row("**all frames**", warp_summary([f for _, r in results for f in r.warp])))
    return rows


def warp_yaw_rows(results) -> list[list[str]]:
    frames = [f for _, r in results for f in r.warp]
    return [[label, str(ws["frames"]), fmt(ws["fold_frames_pct"], 1, "%"), fmt(ws["fold_pixels_max_pct"], 3),
             fmt(ws["stretch_pixels_p95_pct"], 2), fmt(ws["duplicated_pixels_max_pct"], 3), fmt(ws["pop_p95"], 2)]
            for label, ws in by_yaw(frames)]


def plot_warp(results, path: Path) -> None:
    """Every frame's fold, duplication and stretch shares against the driver's |yaw|."""
    plt = _plt()
    frames = [f for _, r in results for f in r.warp]
    if not frames:
        return
    yaw = [abs(f.yaw) for f in frames]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for key, label, colour in (("stretch_pct", "stretch", "#d4b000"), ("duplicated_pct", "duplicated", "#c000c0"),
                               ("fold_pct", "fold", "#d62728")):
        ax.scatter(yaw, [getattr(f, key) for f in frames], s=3, alpha=0.4, color=colour, label=label)
    ax.set_xlabel("driver |yaw| from its neutral, degrees")
    ax.set_ylabel("% of animated pixels")
    ax.set_title("final sampling map: folds, duplication, stretch (every frame)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_stability_speed(selfs, crosses, path: Path) -> None:
    plt = _plt()
    items = [(r.name, r.stability) for r in selfs if r.status == "ok" and r.stability] + \
            [(r.slug.replace("__", "←"), r.stability) for r in crosses if r.status == "ok" and r.stability]
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), gridspec_kw={"width_ratios": [3, 1]})
    ax = axes[0]
    x = np.arange(len(items))
    ax.bar(x - 0.27, [s.jitter_output for _, s in items], 0.27, label="output (detected)")
    ax.bar(x, [s.jitter_target for _, s in items], 0.27, label="retargeted target")
    ax.bar(x + 0.27, [s.jitter_driver for _, s in items], 0.27, label="driver (detected)", color="#bbbbbb")
    ax.set_xticks(x, [n for n, _ in items], rotation=60, ha="right", fontsize=6)
    ax.set_title("landmark jitter while the driver is still, % of face size per frame")
    ax.legend(fontsize=7)
    ax = axes[1]
    groups = [("self @256", selfs), ("cross @512", crosses)]
    bottom = np.zeros(2)
    for stage, colour in (("track", "#4c72b0"), ("retarget", "#55a868"), ("render", "#c44e52")):
        vals = np.array([speed_summary([r for r in g if r.status == "ok"])[stage]["mean"] for _, g in groups])
        ax.bar([0, 1], vals, 0.6, bottom=bottom, label=stage, color=colour)
        bottom += np.nan_to_num(vals)
    ax.set_xticks([0, 1], [g for g, _ in groups])
    ax.set_ylabel("ms per frame")
    ax.set_title("per-stage time")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ------------------------------------------------------------------------------------ markdown


def _clean(folder: Path, pattern: str) -> None:
    if folder.is_dir():
        for p in folder.glob(pattern):
            p.unlink()


def write_report(out_dir: Path, run: RunInfo, selfs: list[SelfResult], crosses: list[CrossResult],
                 probe: MemoryProbe | None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    report = out_dir / "report.md"
    old_history = read_history(report)
    old_findings = read_findings(report)
    plots, sheets = out_dir / "plots", out_dir / "sheets"
    plots.mkdir(exist_ok=True)
    sheets.mkdir(exist_ok=True)
    _clean(plots, "*.png")
    _clean(sheets, "*.jpg")

    ok_self = [r for r in selfs if r.status == "ok"]
    ok_cross = [r for r in crosses if r.status == "ok"]
    speed_self = speed_summary(ok_self)
    speed_cross = speed_summary(ok_cross)
    head = headline(selfs, crosses, speed_cross, run, probe)

    plot_self(selfs, plots / "self_reenactment.png")
    plot_cross(crosses, plots / "cross_reenactment.png")
    plot_stability_speed(selfs, crosses, plots / "stability_speed.png")
    runs = [("self", r) for r in ok_self] + [("cross", r) for r in ok_cross]
    plot_warp(runs, plots / "warp.png")
    for r in ok_self:
        write_jpeg(sheets / f"self_{r.name}.jpg", contact_sheet(r.moments, f"self-reenactment {r.name}", ("real", "output"), diff=True))
    for r in ok_cross:
        write_jpeg(sheets / f"cross_{r.slug}.jpg", contact_sheet(r.moments, f"{r.portrait} driven by {r.clip}"))
    for kind, r in runs:
        if r.warp_worst:
            slug = r.name if kind == "self" else r.slug
            write_jpeg(sheets / f"warp_{kind}_{slug}.jpg", worst_sheet(r.warp_worst, f"worst warp frames, {kind} {r.name}"))

    s = run.settings
    L: list[str] = []
    add = L.append
    add("# PuppetCam evaluation report\n")
    add(f"Generated by `{run.command}` on {run.started_utc} UTC, commit `{run.commit}`, in {run.runtime_s:.0f} s "
        f"on {run.cpu}{(' (' + run.load + ')') if run.load else ''}. Data: {', '.join('`' + f + '`' for f in run.folders)}. "
        "Regenerate with the same command; every number below is deterministic except the timings.\n")
    add("**Sampling.** Every clip is fed to the pipeline frame by frame, in order, as the app would "
        f"(the animator is temporal), up to {s['max_frames']} frames per clip. The image and landmark "
        f"metrics are taken on every {s['stride']}rd frame, thinned evenly to at most {s['samples']} per clip; "
        f"identity on at most {s['identity_samples']} of those per pair. Stability uses every frame of up to "
        f"{s['still_windows']} still stretches of {s['still_window']} frames per clip.\n")
    add("## Headline\n")
    add(_table(list(head), [list(head.values())]))
    add("\nSelf-reenactment numbers are means over clips; cross-reenactment ones means over pairs. "
        "`expr err %` is the expression-transfer error with head pose removed, in % of face size; `mouth gain` "
        "is how much of the requested mouth opening shows (1 = all); `jitter %` is output landmark jitter "
        "while the driver is still, `flicker` the frame-to-frame change outside the face (grey levels). "
        "`fold frames %` and `dup max %` are the final sampling map's (section 2, *Warp quality*).\n")
    add("For scripts: `summary.json` beside this report holds these numbers and more as one flat JSON object with "
        "dotted keys (`self.l1`, `warp.fold_frames_pct`, ...; null where not measured), run facts under `meta`.\n")

    # Self-reenactment
    add("## 1. Self-reenactment\n")
    add("The avatar is the first frame of a clip in which a face is found; the same clip drives it and the real "
        "later frames are the ground truth. Each clip is brought to 256x256 by one fixed square crop around the "
        "first face (2 face sizes, at most the frame's short side: the square clips keep their whole frame, the "
        "two 1280x720 ones are cropped VoxCeleb-style); that 256x256 clip is both the driver and the ground "
        "truth, and the avatar is prepared with `Framing(256, 256)`, so avatar, output and ground truth share one "
        "pixel grid and nothing is resampled before measuring (the literature's resolution, too). A shot ends at "
        "the first scene cut (the face jumps 0.6 face sizes or changes size by 30% in a frame, or the 64x64 "
        "thumbnail of the crop changes by more than 20 grey levels) or after 1.5 s without a face. Frame 0 (the "
        "avatar itself) is not scored.\n")
    add("L1 is the mean absolute difference in [0, 1], PSNR in dB, SSIM is Wang et al.'s (11x11 Gaussian "
        "window, σ 1.5, per channel), written with OpenCV's Gaussian filter: scikit-image is not a dependency of "
        "the app and this reproduces its `structural_similarity(gaussian_weights=True, sigma=1.5, "
        "use_sample_covariance=False)` to 1e-12 (checked in the tests when scikit-image is present). AKD is the mean "
        "distance in pixels at 256x256 between MediaPipe's 478 landmarks on the generated and on the real frame "
        "(still-image mode, the app's own landmark model); frames where either has no face count in MKR (missing "
        "keypoint rate). *Still avatar* is the un-animated first frame scored the same way: the floor that any "
        "animation has to beat. *Mouth / eye opening gain*: how much of the real frame's change of the inner-lip "
        "and lid gaps (from the avatar frame, head motion removed, both detected by MediaPipe) the output shows, as a "
        "least-squares factor over the scored frames (1 = all of it; – where the clip barely opens the mouth or "
        f"closes the eyes: under {MIN_MOUTH_REQUEST:g}% / {MIN_EYE_REQUEST:g}% of the face size); the mean row pools "
        "all clips' frames.\n")
    rows = []
    for r in selfs:
        if r.status != "ok":
            rows.append([r.name, r.status] + [""] * 13)
            continue
        v = self_summary(r)
        rows.append([r.name, f"{r.frames} ({r.ended})", str(len(r.sampled)), fmt(v["L1"], 4), fmt(v["PSNR"], 2),
                     fmt(v["SSIM"], 3), fmt(v["AKD"], 2), fmt(v["MKR"] * 100, 0, "%"),
                     fmt(v["base L1"], 4), fmt(v["base SSIM"], 3), fmt(v["base AKD"], 2),
                     fmt(v["mouth open gain"], 2), fmt(v["eye open gain"], 2), fmt(v["fold frames"], 0, "%"),
                     fmt(v["dup max"], 3)])
    if ok_self:
        ss = [self_summary(r) for r in ok_self]
        rows.append(["**mean**", str(sum(r.frames for r in ok_self)), str(sum(len(r.sampled) for r in ok_self))]
                    + [f"**{fmt(_mean(x[k] for x in ss), d)}**" for k, d in (("L1", 4), ("PSNR", 2), ("SSIM", 3), ("AKD", 2))]
                    + [fmt(_mean(x["MKR"] for x in ss) * 100, 0, "%")]
                    + [fmt(_mean(x[k] for x in ss), d) for k, d in (("base L1", 4), ("base SSIM", 3), ("base AKD", 2))]
                    + [fmt(pooled_gain(ok_self, "mouth_open_out", "mouth_open_real", MIN_MOUTH_REQUEST), 2),
                       fmt(pooled_gain(ok_self, "eye_open_out", "eye_open_real", MIN_EYE_REQUEST), 2),
                       fmt(warp_summary([f for r in ok_self for f in r.warp])["fold_frames_pct"], 0, "%"),
                       fmt(warp_summary([f for r in ok_self for f in r.warp])["duplicated_pixels_max_pct"], 3)])
    add(_table(["clip", "frames run", "scored", "L1", "PSNR", "SSIM", "AKD", "MKR", "still L1", "still SSIM", "still AKD",
                "mouth opening gain", "eye opening gain", "fold frames", "dup max %"], rows))
    add("\n![self-reenactment](plots/self_reenactment.png)\n")
    add("### Against the literature (indicative only)\n")
    add("The papers measure VoxCeleb test videos at 256x256 with their own keypoint detector (AKD with a 68-point "
        "face-alignment network, not MediaPipe's 478 points) and a learned generator that must also invent "
        "disocclusions. Our footage is different (LivePortrait, HDTF, webcam clips: mostly frontal, modest head "
        "motion, often a still background that a warp reproduces perfectly), so the comparison places us, it does "
        "not rank us. Compare each of ours with our own still-avatar floor first.\n")
    lit_rows = []
    if ok_self:
        ss = [self_summary(r) for r in ok_self]
        ours = {k: _mean(x[k] for x in ss) for k in ("L1", "PSNR", "SSIM", "AKD")}
        base = {k: _mean(x["base " + k] for x in ss) for k in ("L1", "PSNR", "SSIM", "AKD")}
        lit_rows.append(["**PuppetCam (this run, our footage)**", fmt(ours["L1"], 4), fmt(ours["PSNR"], 1), fmt(ours["SSIM"], 3), fmt(ours["AKD"], 2)])
        lit_rows.append(["still avatar (this run, our footage)", fmt(base["L1"], 4), fmt(base["PSNR"], 1), fmt(base["SSIM"], 3), fmt(base["AKD"], 2)])
    for name, vals in LITERATURE:
        lit_rows.append([name + ", VoxCeleb"] + [fmt(vals.get(k), 4 if k == "L1" else (1 if k == "PSNR" else 3 if k == "SSIM" else 2)) for k in ("L1", "PSNR", "SSIM", "AKD")])
    add(_table(["method", "L1", "PSNR", "SSIM", "AKD"], lit_rows))
    add("")

    # Cross-reenactment
    add("## 2. Cross-reenactment\n")
    add("Each portrait (prepared at the app's default `Framing(512, 512)`) is driven by another person's clip; "
        "outputs are measured on a 256x256 face crop. There is no ground truth image, so the output is checked against "
        "what the retargeting asked for (`FrameResult.posed`):\n")
    add("- **Expression error**: MediaPipe landmarks detected on the output minus those detected on the avatar "
        "(the achieved motion), against the target landmarks minus the avatar's stored landmarks (the requested "
        "motion), after removing each side's head motion (2-D similarity of the rigid points); mean over the 468 "
        "mesh points, in % of the avatar's face size. Measuring motion from each side's own neutral cancels the "
        "detector's bias on that face. *Still avatar* is the error of an output that does not move at all (= the "
        "size of the requested motion). *Gain* is the least-squares factor achieved ≈ gain × requested (1 = full "
        "transfer); *mouth opening* and *eye opening gain* compare the inner-lip and lid gaps (left out where the clip "
        f"asks for less than {MIN_MOUTH_REQUEST:g}% / {MIN_EYE_REQUEST:g}% of the face size; the headline pools every "
        "pair's frames). Both sides are measured on a fixed 256x256 face crop of the output (2 face sizes around the "
        "avatar's face), where MediaPipe and dlib work best.\n"
        "- **Head-pose error**: the 3-D rotation of the output face (similarity fit, avatar's detected neutral → "
        "output's detected landmarks, rigid points) against the rotation of the target (avatar's neutral → target), "
        "as the geodesic angle in degrees; *requested* is the target's rotation from neutral.\n"
        f"- **Identity**: {run.identity_model or 'not measured: ' + str(run.identity_missing)}. Distance between the "
        "avatar's descriptor and the output's (lower is better; dlib calls < 0.6 the same person). For scale, "
        "the avatar against the driver's own face (another person). Why this model: a real pretrained face-recognition "
        "network (99.38% on LFW) whose weights ship inside a PyPI package (`face_recognition_models`) with a prebuilt "
        "dlib wheel (`dlib-bin`), so it installs with pip and downloads nothing at run time (requirements-eval.txt). "
        "Faces are found with dlib's HOG detector (a box around the MediaPipe landmarks where HOG finds none, e.g. "
        "paintings) and aligned with dlib's 5-point shape predictor, the one dlib pairs with this descriptor.\n"
        "- **Face found**: share of scored output frames where MediaPipe (still-image mode) finds a face.\n")
    rows = []
    for r in crosses:
        if r.status != "ok":
            rows.append([r.name, r.status] + [""] * 10)
            continue
        c = cross_summary(r)
        rows.append([r.name, f"{r.frames} / {len(r.sampled)}", fmt(c["found"], 0, "%"), fmt(c["expr"], 2), fmt(c["expr p95"], 2),
                     f"{fmt(c['mouth'], 2)} / {fmt(c['eyes'], 2)} / {fmt(c['brows'], 2)}", fmt(c["still"], 2),
                     f"{fmt(c['gain mouth'], 2)} / {fmt(c['gain eyes'], 2)} / {fmt(c['gain brows'], 2)}",
                     f"{fmt(c['mouth open gain'], 2)} (r {fmt(c['mouth open corr'], 2)})",
                     f"{fmt(c['eye open gain'], 2)} (r {fmt(c['eye open corr'], 2)})", fmt(c["landmarks"], 2)])
    add("### Expression transfer\n")
    add(_table(["pair (portrait ← clip)", "frames run / scored", "face found", "expr err %", "p95",
                "mouth / eyes / brows err %", "still avatar %", "gain mouth / eyes / brows", "mouth opening gain",
                "eye opening gain", "with pose %"], rows))
    rows = []
    for r in ok_cross:
        c = cross_summary(r)
        rows.append([r.name, fmt(c["pose"], 2), fmt(c["pose p95"], 2), f"{fmt(c['yaw'], 1)} / {fmt(c['pitch'], 1)} / {fmt(c['roll'], 1)}",
                     f"{fmt(c['pose req'], 1)} (max {fmt(c['pose req max'], 1)})",
                     f"{fmt(c['id'], 3)} (max {fmt(c['id max'], 3)})", fmt(c["id same"], 0, "%"), fmt(c["id driver"], 3)])
    if ok_cross:
        cs = [cross_summary(r) for r in ok_cross]
        rows.append(["**mean**", f"**{fmt(_mean(c['pose'] for c in cs), 2)}**", "", "", fmt(_mean(c["pose req"] for c in cs), 1),
                     f"**{fmt(_mean(c['id'] for c in cs), 3)}**", fmt(_mean(c["id same"] for c in cs), 0, "%"),
                     fmt(_mean(c["id driver"] for c in cs), 3)])
    add("\n### Head pose and identity\n")
    add(_table(["pair", "pose err °", "p95", "|Δ| yaw / pitch / roll °", "requested °", "identity dist", "< 0.6",
                "avatar vs driver"], rows))
    add("\n### Eyes and mouth\n")
    add(FACE_DETAIL_NOTE)
    add(_table(["pair", "gaze gain x / y", "gaze corr x / y", "blink asymmetry", "mouth interior ΔE"],
               face_detail_rows(ok_cross)))
    add("\n![cross-reenactment](plots/cross_reenactment.png)\n")
    add("### Warp quality of the final sampling map\n")
    add("Measured on every frame run above (self- and cross-reenactment) by `app.warp_quality`, on the very map "
        "`Renderer.render_crop` hands to `cv2.remap` (`Renderer.frame_maps`: after the upsampling and the lid "
        "sharpening), over the animated pixels (those the map moves by more than half a pixel), leaving out the "
        "openings (mouth interior, eyes) for fold and stretch. *Fold*: the map's Jacobian determinant is <= 0 (the "
        "portrait shows mirrored: a tear), by central differences or at a corner of any one-pixel cell (a crease "
        "one pixel wide, which central differences step over). *Stretch*: local area ratio above 4 or below 1/4 (smears and squeezes). "
        "*Duplicated*: one piece of the portrait reached from two places of the output far apart (a doubled strip). "
        "*Pop*: how far the map jumps between frames (p99 over the moving pixels) per pixel the posed landmarks "
        "moved; about 1 or less for a smooth warp. *Fold frames*: share of frames with any fold pixel; *fold max* and "
        "*dup max*: the worst frame's share; *stretch p95* and *pop p95*: the 95th percentile over frames.\n")
    add("This replaces the earlier *folded area* measure, which counted flipped triangles of the landmark mesh "
        "(the control points, not the pixels): it reported 0% folding on runs whose output visibly tore, because it "
        "could not see what happens between the landmarks, in the upsampling or in the lid sharpening. Numbers of "
        "harness version 1 and 2 do not compare.\n")
    runs = [("self", r) for r in ok_self] + [("cross", r) for r in ok_cross]
    header = ["", "frames", "fold frames", "fold max %", "stretch p95 %", "dup max %", "pop p95"]
    add(_table(["run"] + header[1:], warp_rows(runs)))
    add("\nBy the driver's head turn (|yaw| from its neutral, `app.pose.rotation_to_euler`), every frame pooled:\n")
    add(_table(["|yaw|"] + header[1:], warp_yaw_rows(runs)))
    add("\n![warp](plots/warp.png)\n")
    add("Worst frames per run (tears first: fold + duplication share, then stretch, then pop): driver | output | "
        "output with folds red, duplication magenta, stretch yellow.\n")
    for kind, r in runs:
        if r.warp_worst:
            slug = r.name if kind == "self" else r.slug
            add(f"<details><summary>{kind} {r.name}</summary>\n\n![warp {r.name}](sheets/warp_{kind}_{slug}.jpg)\n</details>\n")

    # Worst cases, computed: which pairs to look at first.
    if ok_cross:
        add("### Worst cases (computed)\n")
        cs = {r.name: cross_summary(r) for r in ok_cross}
        def worst(key, reverse=True, n=3):
            items = [(k, v[key]) for k, v in cs.items() if math.isfinite(v[key])]
            return sorted(items, key=lambda kv: kv[1], reverse=reverse)[:n]
        for title, key, rev, d in (("expression error %", "expr", True, 2), ("mouth opening gain", "mouth open gain", False, 2),
                                   ("eye opening gain", "eye open gain", False, 2), ("head-pose error °", "pose", True, 2),
                                   ("identity distance", "id", True, 3), ("face found %", "found", False, 0)):
            add(f"- {title}: " + ", ".join(f"{k} {fmt(v, d)}" for k, v in worst(key, rev)))
        tearing = sorted(((r.name, warp_summary(r.warp)["fold_pixels_max_pct"]) for r in ok_cross), key=lambda kv: -kv[1])[:3]
        add("- fold pixels, worst frame %: " + ", ".join(f"{k} {fmt(v, 3)}" for k, v in tearing))
        add("")

    add("### Contact sheets\n")
    add("Driver (face crop) above, output below, at a few moments: evenly spaced ones plus the worst frames by "
        "expression error and identity and the largest requested expression. Self-reenactment sheets show the real "
        "frame, the output and their difference (x4).\n")
    for r in ok_cross:
        add(f"**{r.name}**\n\n![{r.slug}](sheets/cross_{r.slug}.jpg)\n")
    add("<details><summary>Self-reenactment sheets</summary>\n")
    for r in ok_self:
        add(f"**{r.name}**\n\n![{r.name}](sheets/self_{r.name}.jpg)\n")
    add("</details>\n")

    # Stability
    add("## 3. Temporal stability\n")
    add(f"Still stretches are the {s['still_windows']} stillest non-overlapping windows of {s['still_window']} frames "
        f"per clip whose median driver-landmark speed is under {s['still_threshold'] * 100:g}% of the face size per frame "
        "(measured on the pipeline's own tracking). In them: **jitter** is the mean frame-to-frame landmark displacement "
        "in % of face size (MediaPipe in still-image mode on the output; the same on the driver's face crop for "
        "reference; and the retargeted target landmarks, which need no detector). **Flicker** is the mean absolute "
        "frame-to-frame difference (8-bit grey levels) outside the face (the convex hull of the face landmarks, grown "
        f"by {s['face_margin'] * 100:g}% of the face size), in the still stretches and over all frames; the driver's "
        "value is the camera's own noise for scale.\n")
    rows = []
    for kind, items in (("self", ok_self), ("cross", ok_cross)):
        for r in items:
            st = r.stability
            if st is None:
                continue
            rows.append([kind, r.name, str(len(st.windows)), fmt(st.jitter_output, 3), fmt(st.jitter_target, 3), fmt(st.jitter_driver, 3),
                         fmt(st.flicker_output, 3), fmt(st.flicker_driver, 3), fmt(st.flicker_output_all, 3), fmt(st.flicker_driver_all, 3)])
    add(_table(["", "clip / pair", "still windows", "jitter output %", "jitter target %", "jitter driver %",
                "flicker output (still)", "flicker driver (still)", "flicker output (all)", "flicker driver (all)"], rows))
    add("\n![stability and speed](plots/stability_speed.png)\n")

    # Speed
    add("## 4. Speed\n")
    add("Per-stage milliseconds from `FrameResult.times`, over every frame run above (same run as the quality "
        "numbers; the metrics are computed after each pass, so they do not slow it down). `process` is the whole "
        "`Puppeteer.process` call; end-to-end adds decoding (and, for self-reenactment, the 256x256 crop). "
        "This machine may be shared with other jobs while the harness runs, so the timings are indicative; the "
        "quality numbers are not affected.\n")
    rows = []
    for label, sp in (("self-reenactment, 256x256", speed_self), ("cross-reenactment, 512x512 (app default)", speed_cross)):
        if not sp["process"]["n"]:
            continue
        rows.append([label, str(sp["fps"]["frames"])] + [f"{fmt(sp[k]['mean'], 1)} / {fmt(sp[k]['p95'], 1)}"
                     for k in ("decode", "track", "retarget", "render", "process")]
                    + [fmt(sp["fps"]["process"], 1), fmt(sp["fps"]["end_to_end"], 1)])
    add(_table(["run", "frames", "decode ms (mean / p95)", "track", "retarget", "render", "process", "fps (process)",
                "fps (end to end)"], rows))
    if probe is not None:
        add(f"\n**Memory**: a separate {probe.frames}-frame pass of the first pair at 512x512, in a fresh Python process "
            f"running only the app: peak resident set **{fmt(probe.peak_rss_mib, 0)} MiB** (Python, MediaPipe, torch, OpenCV "
            f"and one avatar's pipeline); Python and NumPy allocations peaked at {fmt(probe.python_peak_mib, 1)} MiB "
            f"(tracemalloc; torch and MediaPipe allocate outside it); {fmt(probe.fps, 1)} fps in that pass, tracemalloc on."
            + (f" Note: {probe.note}." if probe.note else ""))
    import resource

    add(f"The evaluation process itself peaked at "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (getrusage; metric models and the kept "
        "256x256 frames of one clip included).\n")

    add("## Method notes\n")
    add("- Versions: " + ", ".join(f"{k} {v}" for k, v in run.versions.items()) + ".")
    add("- The avatar landmarks, the driver tracking and every measurement use MediaPipe's face mesh; a renderer "
        "that fools MediaPipe in the same way on every frame would not be caught by the landmark metrics alone: "
        "L1/SSIM, identity and the contact sheets are the independent checks.")
    for note in run.notes:
        add(f"- {note}")
    add("")
    if old_findings:
        add("## Findings\n")
        add(old_findings)
        add("")
    add("## History\n")
    add("Headline numbers of every run, oldest first. `python -m app.evaluate` appends a row each time it writes this "
        "report and keeps the earlier rows (it parses them from the block below, matching columns by name), so progress "
        "stays visible. Compare rows of the same *harness* version only: a row marked – comes from a pre-release harness "
        "that scored cross-reenactment on the whole downscaled frame and averaged the mouth gain per pair.\n")
    add(history_block(old_history, head))
    add("")
    report.write_text("\n".join(L), encoding="utf-8")
    return report
