"""Per-frame milliseconds of LivePortrait's networks on this machine, torch and ONNX Runtime.

    python -m export.liveportrait_bench [--threads 2] [--repeat 3] [--out DIR] [--weights DIR]

F runs once per avatar; M (driver crop), S, W and G run every frame. The inputs are the painted
faces of the parity fixture. Markdown rows for docs/engines.md are printed at the end.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import statistics
import time


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm-up: allocations, kernel choices, ORT's first-run costs
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import onnxruntime as ort
    import torch

    from . import ensure_onnx
    from .liveportrait import NAMES, make_specs
    from .registry import ModelConfig

    p = argparse.ArgumentParser(prog="python -m export.liveportrait_bench", description=__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, default=None, help="ONNX cache folder (default: the user cache)")
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument("--skip-ort", action="store_true")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    specs = make_specs(args.weights)
    config = ModelConfig()
    rows: dict[str, dict[str, float]] = {}
    for name in NAMES:
        spec = specs[name]
        feed = spec.parity_inputs(config)[0]  # batch 1
        model = spec.build(config)
        tensors = [torch.from_numpy(np.ascontiguousarray(feed[n])) for n in spec.input_names]

        def run_torch():
            with torch.inference_mode():
                model(*tensors)

        rows[name] = {"torch": _median_ms(run_torch, args.repeat)}
        if not args.skip_ort:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = args.threads
            opts.log_severity_level = 3
            session = ort.InferenceSession(str(ensure_onnx(spec, config, args.out)), opts,
                                           providers=["CPUExecutionProvider"])
            rows[name]["ort"] = _median_ms(lambda: session.run(None, feed), args.repeat)
        print(name, {k: round(v, 1) for k, v in rows[name].items()}, flush=True)

    short = {n: n[len("liveportrait_"):] for n in NAMES}
    per_frame = [n for n in NAMES if short[n] != "appearance"]
    print("\n| network | when | torch CPU fp32 ms | ONNX Runtime CPU fp32 ms |\n|---|---|---:|---:|")
    for n in NAMES:
        when = "once per avatar" if short[n] == "appearance" else "per frame"
        print(f"| {short[n]} | {when} | {rows[n]['torch']:.1f} | {rows[n].get('ort', float('nan')):.1f} |")
    for backend in ("torch", "ort"):
        if all(backend in rows[n] for n in per_frame):
            print(f"per frame ({backend}): {sum(rows[n][backend] for n in per_frame):.0f} ms")
    print(f"({args.threads} threads, batch 1, median of {args.repeat} after one warm-up; torch {torch.__version__}, "
          f"onnxruntime {ort.__version__})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
