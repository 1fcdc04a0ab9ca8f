"""python -m app.engine_bench: ms per frame of every available runtime backend, in one run.

Measures, on real footage (a portrait driven by a real video through the app's Animator):
- the field model alone (WarpField, batch 1, and batch 4 for the multi-face case);
- the whole Renderer.render at 512x512 and 1024x1024 output (the model plus cv2 resize/remap
  and the mouth fill);
and prints ratios against torch-cpu. Backends are timed interleaved, round by round, so a busy
machine slows them alike; the figure is the median per call. Timings are printed, never asserted.

    python -m app.engine_bench [--frames 30] [--rounds 10] [--sizes 512 1024] [--backends torch-cpu,...]
    python -m app.engine_bench --save-inputs FILE   # also pickle the driven inputs (for a GPU box
    python -m app.engine_bench --inputs FILE        # without MediaPipe: bench from that pickle)
    python -m app.engine_bench --threads-sweep      # ONNX Runtime CPU: intra-op threads x spinning

It lives in the app, not in engines/, because it times the app's Renderer and drives the avatar
through the app's pipeline: engines/ stays below the app and imports nothing from it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import pickle
import platform
import statistics
import sys
import time

import numpy as np


def _inputs(args) -> dict:
    if args.inputs:
        with open(args.inputs, "rb") as f:
            return pickle.load(f)
    from .model_inputs import drive_sizes, footage_available, synthetic
    from .native_logs import native_stderr_silenced

    if footage_available(args.data):
        with native_stderr_silenced():
            return drive_sizes(tuple(args.sizes), args.frames, data_dir=args.data)
    print("footage folder not found: benchmarking a synthetic head motion of the bundled avatar")
    return {s: synthetic(args.frames, size=s) for s in args.sizes}


def _engines(names: list[str]) -> tuple[dict, dict, dict]:
    from engines import build_engine, unavailable_reason

    from models.warp_field import DEFAULT_GRID_SIZE

    engines, skipped, startup = {}, {}, {}
    for name in names:
        why = unavailable_reason(name)
        if why:
            skipped[name] = why
            continue
        t0 = time.perf_counter()
        try:
            engines[name] = build_engine(name, DEFAULT_GRID_SIZE)
        except Exception as exc:  # noqa: BLE001 - a backend that fails is reported, the rest still run
            skipped[name] = f"failed to start: {type(exc).__name__}: {exc}"
            continue
        startup[name] = time.perf_counter() - t0
    return engines, skipped, startup


def _interleaved(calls: dict, rounds: int, per_round: int, warmup: int = 3) -> dict[str, float]:
    """ms per call of each callable, timed round-robin: the lowest of the rounds' medians.

    The dev machine has 2 cores shared with other work; a round that another process disturbs
    is slower for whichever backend ran then, so the best round is the fair comparison (each
    round's median already drops single stalls)."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    best = {k: float("inf") for k in calls}
    for _ in range(rounds):
        for k, fn in calls.items():
            times = []
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            best[k] = min(best[k], 1e3 * statistics.median(times))
    return best


def _cycler(n):
    state = {"i": 0}

    def next_index():
        i = state["i"] % n
        state["i"] += 1
        return i

    return next_index


def _environment(engines: dict) -> str:
    import torch

    parts = [f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()})",
             f"torch {torch.__version__} ({torch.get_num_threads()} threads)"]
    try:
        import onnxruntime as ort

        parts.append(f"onnxruntime {ort.__version__} {ort.get_available_providers()}")
    except ImportError:
        parts.append("no onnxruntime")
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        parts.append(f"GPU {p.name} (sm {p.major}.{p.minor})")
    else:
        parts.append("no CUDA GPU")
    return ", ".join(parts)


def threads_sweep(seq) -> None:
    import onnxruntime as ort

    from export import ensure_onnx

    from engines.onnxruntime_engine import session_options

    path = ensure_onnx("warp_field")
    feeds = [{"tri_index": seq.tri_index, "tri_weight": seq.tri_weight, "displacement": d[None]}
             for d in seq.displacements]
    calls = {}
    for threads in sorted({1, 2, os.cpu_count() or 1}):
        for spin in ("0", "1"):
            opts = session_options("cpu", threads, spinning=spin == "1")
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            nxt = _cycler(len(feeds))
            calls[f"threads={threads} spinning={'on' if spin == '1' else 'off'}"] = (
                lambda s=sess, n=nxt: s.run(None, feeds[n()]))
    for k, ms in _interleaved(calls, rounds=8, per_round=20).items():
        print(f"  onnxruntime-cpu {k:28s} {ms:7.2f} ms per frame")


def _print_table(names: list[str], startup: dict[str, float], err: dict[str, float],
                 columns: dict[str, dict[str, float]], rounds: int) -> None:
    base = "torch-cpu" if "torch-cpu" in names else names[0]
    header = f"{'backend':18s} {'start s':>7s} {'max|d| vs ' + names[0]:>22s}" + "".join(
        f" {c + ' ms':>22s}" for c in columns)
    print(header)
    for name in names:
        row = f"{name:18s} {startup[name]:7.2f} {err[name]:22.2e}"
        for col in columns.values():
            row += f" {col[name]:10.2f} ({col[base] / col[name]:5.2f}x)    "
        print(row)
    print(f"(Nx = speed relative to {base}: its ms / this backend's ms; best of {rounds} interleaved rounds' median per call)")
    for col, values in columns.items():
        ranked = sorted(values, key=values.get)
        if len(ranked) > 1:
            chain = " < ".join(f"{k} {values[k]:.2f}" for k in ranked)
            ratios = ", ".join(f"{ranked[i + 1]}/{ranked[i]} = {values[ranked[i + 1]] / values[ranked[i]]:.2f}"
                               for i in range(len(ranked) - 1))
            print(f"{col}: {chain} ms; ratios {ratios}")


def main(argv: list[str] | None = None) -> int:
    from engines import backends

    from .render import Renderer

    p = argparse.ArgumentParser(prog="python -m app.engine_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=30, help="frames of the driving video (default 30)")
    p.add_argument("--rounds", type=int, default=10, help="interleaved timing rounds (default 10)")
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024], help="output sizes (default 512 1024)")
    p.add_argument("--backends", default=",".join(backends()), help="comma-separated (default: all)")
    p.add_argument("--data", type=Path, default=None, help="real footage folder (default ../shared/data)")
    p.add_argument("--inputs", type=Path, default=None, help="load driven inputs from this pickle")
    p.add_argument("--save-inputs", type=Path, default=None, help="pickle the driven inputs here")
    p.add_argument("--threads-sweep", action="store_true", help="also sweep ONNX Runtime CPU thread settings")
    args = p.parse_args(argv)

    sequences = _inputs(args)
    sizes = [s for s in args.sizes if s in sequences]
    if args.save_inputs:
        with open(args.save_inputs, "wb") as f:
            pickle.dump({s: sequences[s] for s in sizes}, f, protocol=pickle.HIGHEST_PROTOCOL)
        print(f"inputs saved to {args.save_inputs}")
    first = sequences[sizes[0]]
    engines, skipped, startup = _engines([b.strip() for b in args.backends.split(",") if b.strip()])
    print(f"PuppetCam engine benchmark: {first.source}; grid {first.avatar.rig.grid_size}")
    print(f"machine: {_environment(engines)}")
    if not engines:
        print("no backend could run")
        return 1

    # Field model alone, batch 1 and batch 4, real displacements cycling.
    ti, tw, disp = first.tri_index, first.tri_weight, first.displacements
    ti4, tw4 = np.repeat(ti, 4, axis=0), np.repeat(tw, 4, axis=0)
    n = len(disp)
    err = {}
    ref = None
    for name, eng in engines.items():
        out = np.stack([eng(ti, tw, disp[i:i + 1])[0] for i in range(n)])
        ref = out if ref is None else ref
        err[name] = float(np.abs(out - ref).max())
    columns: dict[str, dict[str, float]] = {}
    per_round = max(5, n // 2)
    calls = {}
    for name, eng in engines.items():
        nxt = _cycler(n)
        calls[name] = lambda e=eng, c=nxt: e(ti, tw, disp[c()][None])
    columns["field"] = _interleaved(calls, args.rounds, per_round)
    calls = {}
    for name, eng in engines.items():
        nxt = _cycler(n - 3)
        calls[name] = lambda e=eng, c=nxt: e(ti4, tw4, disp[(i := c()):i + 4])
    columns["field x4"] = _interleaved(calls, max(3, args.rounds // 2), per_round)

    # The whole renderer at each output size.
    for size in sizes:
        seq = sequences[size]
        calls = {}
        for name, eng in engines.items():
            r = Renderer(seq.avatar, eng)
            nxt = _cycler(len(seq.posed))
            calls[name] = lambda r=r, c=nxt, s=seq: r.render(s.posed[(i := c())], s.mouths[i])
        columns[f"render {size}"] = _interleaved(calls, max(3, args.rounds // 3), len(seq.posed) // 3 or 1)

    _print_table(list(engines), startup, err, columns, args.rounds)
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    if args.threads_sweep and "onnxruntime-cpu" in engines:
        print("ONNX Runtime CPU session settings (field model, batch 1):")
        threads_sweep(first)
    return 0


if __name__ == "__main__":
    sys.exit(main())
