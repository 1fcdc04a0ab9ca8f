"""Command line: python -m app.evaluate [FOLDER ...] [--out DIR] (default ../shared/data beside the checkout).

Everything is written under the output folder and nowhere else. Without --out, a run on the
default data folder updates the committed report in docs/evaluation (its history and findings
blocks are carried from run to run there); a run on any other folder goes to the git-ignored
out/evaluation/<folder name>, so evaluating other footage never rewrites the committed report.
"""

from __future__ import annotations

import os

# MediaPipe's C++ side logs through glog/absl: keep its chatter off the console.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime as _dt  # noqa: E402
from pathlib import Path  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from .data import choose_pairs, default_data_dir, discover, repo_root  # noqa: E402


def _commit() -> str:
    root = repo_root()
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "app", "engines"], cwd=root, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+changes" if dirty else "")


def _brief(exc: BaseException) -> str:
    """An exception in one line, with where it was raised (the innermost frame in the project)."""
    import traceback

    where = ""
    for fs in reversed(traceback.extract_tb(exc.__traceback__)):
        if "/app/" in fs.filename or "/engines/" in fs.filename:
            where = f" (in {Path(fs.filename).parent.name}/{Path(fs.filename).name}:{fs.lineno} {fs.name})"
            break
    text = " ".join(str(exc).split())
    kind = type(exc).__name__ if type(exc).__module__ == "builtins" else f"{type(exc).__module__}.{type(exc).__name__}"
    return f"{kind}: {text[:160]}{where}"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("mediapipe", "cv2", "numpy", "torch", "dlib"):
        try:
            mod = __import__(name)
            out["opencv" if name == "cv2" else name] = str(getattr(mod, "__version__", "?"))
        except ImportError:
            out[name] = "not installed"
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.evaluate",
                                description="Measure PuppetCam on real footage; write report.md, summary.json, plots and sheets under --out.")
    p.add_argument("folders", nargs="*", type=Path,
                   help="data folders holding driving/ (clips) and portraits/ (default: ../shared/data, or $PUPPETCAM_DATA)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: docs/evaluation for the default data folder, else out/evaluation/NAME)")
    p.add_argument("--max-frames", type=int, default=300, help="frames run through the pipeline per clip (default 300)")
    p.add_argument("--stride", type=int, default=3, help="score every Nth frame (default 3)")
    p.add_argument("--samples", type=int, default=40, help="at most this many scored frames per clip (default 40)")
    p.add_argument("--identity-samples", type=int, default=12, help="identity descriptors per pair (default 12)")
    p.add_argument("--pairs", type=int, default=None, help="only the first N cross-reenactment pairs")
    p.add_argument("--clips", type=int, default=None, help="only the first N clips for self-reenactment")
    p.add_argument("--no-self", action="store_true", help="skip self-reenactment")
    p.add_argument("--no-cross", action="store_true", help="skip cross-reenactment")
    ident = p.add_mutually_exclusive_group()
    ident.add_argument("--identity", dest="identity", action="store_true", default=None,
                       help="measure identity with dlib (default: only for the default data folder)")
    ident.add_argument("--no-identity", dest="identity", action="store_false", help="skip the identity model")
    p.add_argument("--probe-frames", type=int, default=60, help="frames of the memory probe in a fresh process, 0 to skip (default 60)")
    p.add_argument("--quiet", action="store_true")
    return p


def default_out(folders: list[Path] | None) -> Path:
    """docs/evaluation only for the committed report's own data (the default folder); anything
    else under the git-ignored out/, named after the first folder."""
    root = repo_root()
    if not folders or [Path(f).resolve() for f in folders] == [default_data_dir().resolve()]:
        return root / "docs" / "evaluation"
    return root / "out" / "evaluation" / (Path(folders[0]).resolve().name or "data")


def _identity_model(args: argparse.Namespace, say):
    """dlib's face descriptor, or None and why not. dlib's HOG detector and ResNet are the
    slowest extra: on by default only for the committed report's full run, so a quick look at
    other footage stays quick."""
    from . import identity

    embedder, id_missing = None, None
    want_identity = args.identity if args.identity is not None else default_out(args.folders) == default_out(None)
    if want_identity:
        id_missing = identity.unavailable_reason()
        if id_missing is None:
            embedder = identity.FaceEmbedder()
        else:
            say(f"evaluate: identity not measured: {id_missing}")
    else:
        id_missing = "skipped (--no-identity, or another data folder without --identity)"
    return embedder, id_missing


def _run_all(args: argparse.Namespace, data: list, cfg, embedder, say) -> tuple[list, list]:
    """Self-reenactment on every clip, then cross-reenactment on every pair; one crash is a
    finding in the report, not the end of the run."""
    from . import reenactment as R

    detector = R.Detector()
    selfs, crosses = [], []
    try:
        if not args.no_self:
            clips = [c for d in data for c in d.clips][:args.clips]
            for i, clip in enumerate(clips, 1):
                try:
                    r = R.self_reenactment(clip, detector, cfg, neutral_start=not any(s.status == "ok" for s in selfs))
                except Exception as exc:  # one clip's crash is a finding, not the end of the run
                    r = R.SelfResult(clip.stem, f"error: {_brief(exc)}")
                say(f"[self {i}/{len(clips)}] {clip.name}: {r.status}, {r.frames} frames, {r.seconds:.1f} s")
                selfs.append(r)
        if not args.no_cross:
            pairs = [p for d in data for p in choose_pairs(d)][:args.pairs]
            for i, (portrait, clip) in enumerate(pairs, 1):
                try:
                    r = R.cross_reenactment(portrait, clip, detector, embedder, cfg)
                except Exception as exc:
                    r = R.CrossResult(portrait.name, clip.name, f"error: {_brief(exc)}")
                say(f"[cross {i}/{len(pairs)}] {portrait.name} <- {clip.name}: {r.status}, {r.frames} frames, {r.seconds:.1f} s")
                crosses.append(r)
    finally:
        detector.close()
    return selfs, crosses


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t_start = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    folders = args.folders or [default_data_dir()]
    missing = [f for f in folders if not Path(f).is_dir()]
    if missing:
        from app.data_dir import missing_data_message

        print(missing_data_message("python -m app.evaluate", Path(missing[0])), file=sys.stderr)
        return 2
    data = [discover(f) for f in folders]
    if not any(d.clips for d in data):
        print(f"evaluate: no video clips found in {', '.join(map(str, folders))} (looked in driving/ and the folder itself).",
              file=sys.stderr)
        return 2

    from . import reenactment as R
    from .report import RunInfo, write_report
    from .summary import write_summary

    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    cfg = R.Settings(max_frames=args.max_frames, stride=args.stride, samples=args.samples,
                     identity_samples=args.identity_samples)
    embedder, id_missing = _identity_model(args, say)

    selfs, crosses = _run_all(args, data, cfg, embedder, say)
    probe = None
    ok = [r for r in crosses if r.status == "ok"]
    if ok and args.probe_frames > 0:
        first = next((p, c) for d in data for p, c in choose_pairs(d)
                     if p.name == ok[0].portrait and c.name == ok[0].clip)
        probe = R.memory_probe(first[0], first[1], args.probe_frames)
        say(f"[memory] peak {probe.peak_rss_mib:.0f} MiB for the app alone, {probe.fps:.1f} fps")

    try:
        load = "load average %.1f at the end" % os.getloadavg()[0]
    except OSError:
        load = ""
    runtime = time.perf_counter() - t_start
    run = RunInfo(
        command="python -m app.evaluate" + ("" if argv is None and len(sys.argv) <= 1 else " " + " ".join(argv if argv is not None else sys.argv[1:])),
        folders=[str(f) for f in folders], started_utc=started, commit=_commit(), runtime_s=runtime,
        settings={"max_frames": cfg.max_frames, "stride": cfg.stride, "samples": cfg.samples,
                  "identity_samples": cfg.identity_samples, "still_windows": R.STILL_MAX_WINDOWS,
                  "still_window": R.STILL_WINDOW, "still_threshold": R.STILL_THRESHOLD, "face_margin": R.FACE_MARGIN},
        versions=_versions(), identity_model=embedder.model_name + " (dlib, from face_recognition_models)" if embedder else None,
        identity_missing=id_missing, cpu=f"{os.cpu_count()} CPU cores ({platform.machine()})", load=load,
        notes=[f"Identity: HOG found the face in {embedder.hog_found} images, the landmark box was used for "
               f"{embedder.fallback_used}." if embedder else "Identity was not measured.",
               "face_recognition_models imports pkg_resources, which setuptools 81 and later no longer ship; the "
               "harness finds its model files without importing the package, so either setuptools works."],
    )
    out = Path(args.out) if args.out is not None else default_out(args.folders)
    path = write_report(out, run, selfs, crosses, probe)
    write_summary(out / "summary.json", selfs, crosses, probe,
                  {"command": run.command, "commit": run.commit, "started_utc": started, "folders": run.folders,
                   "runtime_s": round(time.perf_counter() - t_start, 1), "settings": run.settings})
    say(f"evaluate: wrote {path} and summary.json in {runtime:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
