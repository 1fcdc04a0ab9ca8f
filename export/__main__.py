"""python -m export: per-frame torch models -> ONNX (checked, compared with torch), and with
--trt, ONNX -> TensorRT engines with manifests. See docs/engines.md.

The ONNX Runtime vs torch parity check runs on synthetic inputs by default (export/warp_field_inputs.py)
and on real ones with --inputs FILE.npz, a file the app records from footage
(`python -m app.model_inputs --out FILE.npz`): export sits below the app and never imports it, so
the real inputs come in as data."""

from __future__ import annotations

import argparse
from pathlib import Path
import sys


def build_parser() -> argparse.ArgumentParser:
    from models.warp_field import DEFAULT_FIT_STEPS, DEFAULT_GRID_SIZE

    from .liveportrait import GROUP, NAMES
    from .registry import DEFAULT_MAX_BATCH, DEFAULT_OPSET, MODELS

    p = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    p.add_argument("--grid", type=int, default=DEFAULT_GRID_SIZE, help=f"warp grid size (default {DEFAULT_GRID_SIZE})")
    p.add_argument("--fit-steps", type=int, default=DEFAULT_FIT_STEPS,
                   help=f"WarpField fit steps (default {DEFAULT_FIT_STEPS})")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET}, >= 17)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: the user cache, ~/.cache/puppetcam/models; env PUPPETCAM_CACHE)")
    p.add_argument("--model", action="append", choices=sorted(MODELS) + [GROUP, *NAMES],
                   help=f"only this model (repeatable); '{GROUP}' = its five networks, not exported by default")
    p.add_argument("--weights", type=Path, default=None,
                   help="LivePortrait checkpoint folder for the liveportrait models (default: the parity fixture's "
                        "random weights: right graphs, noise output)")
    p.add_argument("--frames", type=int, default=30, help="frames of synthetic motion for the parity check")
    p.add_argument("--inputs", type=Path, default=None,
                   help="recorded model inputs (.npz from python -m app.model_inputs --out FILE) for the parity "
                        "check; models it has no inputs for use synthetic ones")
    p.add_argument("--tolerance", type=float, default=None, help="max abs error allowed (default per model, 1e-4)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    trt = p.add_argument_group("TensorRT")
    trt.add_argument("--trt", action="store_true", help="build a TensorRT engine per ONNX file (+ manifest)")
    trt.add_argument("--fp32", action="store_true", help="fp32 engines (default fp16)")
    trt.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                     help=f"largest batch (faces) of the optimization profile (default {DEFAULT_MAX_BATCH})")
    trt.add_argument("--force", action="store_true", help="rebuild engines even when their manifest says ok")
    return p


def _export_all(args, specs, config, out) -> int:
    from tqdm import tqdm

    from .onnx_export import export_onnx
    from .opcheck import check_plugin_free, graph_ops, load_table
    from .recorded import load_inputs
    from .verify import check_model, ort_vs_torch

    table = load_table()
    steps = ["export", "onnx.checker", "TensorRT op table", "parity inputs", "ORT vs torch"]
    failed = 0
    recorded = load_inputs(args.inputs) if args.inputs else None
    with tqdm(total=len(specs) * len(steps), disable=args.quiet, unit="step", leave=False) as bar:
        for spec in specs:
            path = out / spec.filename(config)
            say = tqdm.write

            bar.set_description(f"{spec.name}: export")
            exporter = export_onnx(spec, config, path)
            bar.update()
            say(f"{spec.name}: {path} ({path.stat().st_size / 1024:.0f} KiB, opset {config.opset}, {exporter} exporter)")

            bar.set_description(f"{spec.name}: onnx.checker")
            check_model(path)
            bar.update()
            say(f"{spec.name}: onnx.checker ok")

            bar.set_description(f"{spec.name}: op table")
            ops = graph_ops(path)
            problems = check_plugin_free(path, table)
            bar.update()
            say(f"{spec.name}: {sum(ops.values())} nodes, ops: " + ", ".join(f"{k} x{v}" for k, v in sorted(ops.items())))
            if problems:
                failed += 1
                say(f"{spec.name}: NOT plugin-free for TensorRT {table['tensorrt_version']}:\n  " + "\n  ".join(problems))
            else:
                say(f"{spec.name}: plugin-free: every op is in TensorRT {table['tensorrt_version']}'s ONNX parser table")

            bar.set_description(f"{spec.name}: parity inputs")
            mine = recorded.models.get(spec.name) if recorded is not None else None
            feeds = spec.parity_inputs(config, args.frames, mine)
            source = f"recorded inputs ({recorded.source})" if mine is not None else "synthetic inputs"
            bar.update()

            bar.set_description(f"{spec.name}: ORT vs torch")
            result = ort_vs_torch(spec, config, path, feeds)
            bar.update()
            tol = args.tolerance if args.tolerance is not None else spec.tolerance
            ok = result["max_abs"] <= tol
            failed += not ok
            say(f"{spec.name}: ONNX Runtime vs torch on {source}: max abs error {result['max_abs']:.3g} "
                f"(batch 1: {result['batch1_max_abs']:.3g}, batched: {result['batched_max_abs']:.3g}; "
                f"tolerance {tol:g}) {'ok' if ok else 'FAILED'}")
    return 1 if failed else 0


def _build_engines(args, specs, config, out) -> int:
    from . import ensure_onnx
    from .tensorrt_build import TensorRTUnavailable, ensure_engine, import_tensorrt

    try:
        import_tensorrt()
    except TensorRTUnavailable as exc:
        print(f"python -m export --trt: {exc}", file=sys.stderr)
        print("The ONNX files (python -m export) and the onnxruntime / torch engines work without it.", file=sys.stderr)
        return 2
    precision = "fp32" if args.fp32 else "fp16"
    for spec in specs:
        path = ensure_onnx(spec, config, out)
        engine, manifest, before = ensure_engine(path, precision, args.max_batch, force=args.force, progress=print)
        state = "up to date" if before == "ok" else f"built ({before})"
        print(f"{spec.name}: {engine} {state}; TensorRT {manifest['tensorrt_version']}, {manifest['gpu_name']} "
              f"(sm {manifest['compute_capability']}), {precision}, profile {manifest['profile']}")
    return 0


def _resolve_specs(names: list[str], weights: Path | None) -> list:
    from .liveportrait import GROUP, NAMES, make_specs
    from .registry import MODELS

    wanted: list[str] = []
    for n in names:
        for m in (NAMES if n == GROUP else (n,)):
            if m not in wanted:
                wanted.append(m)
    lp = make_specs(weights) if any(n in NAMES for n in wanted) else {}
    return [lp[n] if n in lp else MODELS[n] for n in wanted]


def main(argv: list[str] | None = None) -> int:
    from .paths import models_dir
    from .registry import MODELS, ModelConfig

    args = build_parser().parse_args(argv)
    if args.opset < 17:
        print("python -m export: --opset must be 17 or newer (GridSample needs 16; the issue asks for >= 17)",
              file=sys.stderr)
        return 2
    specs = _resolve_specs(args.model or list(MODELS), args.weights)
    config = ModelConfig(args.grid, args.fit_steps, args.opset)
    out = models_dir(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.trt:
        return _build_engines(args, specs, config, out)
    return _export_all(args, specs, config, out)


if __name__ == "__main__":
    sys.exit(main())
