"""Command-line front end: `python -m app render ...` and `python -m app live ...`."""

from __future__ import annotations

import argparse
from dataclasses import replace
import logging
from pathlib import Path
import sys

from . import DEFAULT_AVATAR
from .avatar import load_avatar
from .composite import Framing
from .capture import CameraSource, FrameSource, VideoFileSource, list_cameras
from .errors import PuppetCamError, VirtualCameraUnavailable
from .pipeline import LiveSession, PipelineSettings, Puppeteer, render_file
from .retarget import RetargetSettings
from .sinks import PreviewSink, SinkFanout, VideoFileSink, VirtualCameraSink

log = logging.getLogger("puppetcam")


def _size(text: str) -> tuple[int, int] | None:
    if text == "native":
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 512x512 or 'native', not {text!r}")
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise argparse.ArgumentTypeError("size must be between 16 and 4096 pixels on each side")
    return w, h


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--avatar", type=Path, default=None,
                   help=f"portrait to animate (default: the bundled {DEFAULT_AVATAR.name})")
    p.add_argument("--size", type=_size, default=(512, 512), help="output WxH, or 'native' (default 512x512)")
    p.add_argument("--fit", action="store_true", help="show the whole portrait with borders instead of cropping")
    p.add_argument("--mode", choices=("relative", "absolute"), default="relative")
    p.add_argument("--head-gain", type=float, default=1.0)
    p.add_argument("--mouth-gain", type=float, default=1.0)
    p.add_argument("--eyes-gain", type=float, default=1.0)
    p.add_argument("--brows-gain", type=float, default=1.0)
    p.add_argument("--follow-distance", action="store_true",
                   help="let the head grow and shrink when you lean in (off by default)")
    p.add_argument("--smoothing", type=float, default=1.0, help="jitter filter strength (0 off, 1 default)")
    p.add_argument("--engine", default="auto", help="runtime backend: auto, torch, torch-cuda, onnxruntime, tensorrt")


def _settings(args: argparse.Namespace) -> PipelineSettings:
    base = PipelineSettings()
    size = args.size
    framing = None if size is None else Framing(size[0], size[1], "fit" if args.fit else "fill")
    retarget = RetargetSettings(mode=args.mode, head_gain=args.head_gain, mouth_gain=args.mouth_gain,
                                eyes_gain=args.eyes_gain, brows_gain=args.brows_gain,
                                scale_gain=1.0 if args.follow_distance else 0.0)
    smoothing = replace(base.animator.smoothing, strength=args.smoothing)
    animator = replace(base.animator, retarget=retarget, smoothing=smoothing)
    return PipelineSettings(framing=framing, animator=animator, engine=args.engine,
                            mirror_input=getattr(args, "mirror", False))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="PuppetCam: animate a portrait with your face.")
    sub = parser.add_subparsers(dest="command")

    render = sub.add_parser("render", help="animate a portrait with a driving video, to an mp4 file")
    _common(render)
    render.add_argument("--driver", type=Path, required=True, help="driving video of a face")
    render.add_argument("--out", type=Path, required=True, help="output .mp4")
    render.add_argument("--quiet", action="store_true", help="no progress bar")

    live = sub.add_parser("live", help="animate live from a webcam (or a video file) to a virtual camera")
    _common(live)
    src = live.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, default=None, help="webcam index (default 0)")
    src.add_argument("--driver", type=Path, default=None, help="a video file instead of a webcam")
    live.add_argument("--loop", action="store_true", help="loop the --driver video")
    live.add_argument("--virtual-cam", action="store_true", help="send the avatar to a virtual camera")
    live.add_argument("--fps", type=float, default=30.0, help="virtual camera frame rate")
    live.add_argument("--mirror", action="store_true", help="mirror the camera (selfie view)")
    live.add_argument("--preview", action="store_true", help="show a preview window (keys: c calibrate, q quit)")
    live.add_argument("--record", type=Path, default=None, help="also record the output to this .mp4")
    return parser


def _open_live_source(args: argparse.Namespace) -> FrameSource:
    if args.driver is not None:
        return VideoFileSource(args.driver, loop=args.loop)
    index = 0 if args.camera is None else args.camera
    try:
        return CameraSource(index)
    except PuppetCamError as exc:
        if args.camera is None and not list_cameras():
            raise PuppetCamError(
                "No webcam was found on this computer.",
                "Drive the avatar with a video file instead: python -m app live --driver VIDEO.mp4 --preview",
            ) from exc
        raise


def cmd_render(args: argparse.Namespace) -> int:
    settings = _settings(args)
    source = VideoFileSource(args.driver)
    avatar = load_avatar(args.avatar or DEFAULT_AVATAR, settings.framing)
    sink = VideoFileSink(args.out, source.fps, avatar.size)
    progress = None
    if not args.quiet:
        from tqdm import tqdm

        progress = tqdm(total=source.frame_count or None, unit="frame", desc=f"render {args.driver.name}")
    try:
        with SinkFanout([sink]) as sinks:
            count = render_file(avatar, source, sinks, settings,
                                on_frame=(lambda r: progress.update(1)) if progress else None)
            if sinks.errors:
                raise PuppetCamError(sinks.errors[0], "Check that the output folder is writable and has space.")
    finally:
        source.close()
        if progress:
            progress.close()
    if count == 0:
        raise PuppetCamError(f"The driving video {args.driver} has no readable frames.",
                             "Check that the file is a complete video.")
    print(f"wrote {count} frames at {source.fps:g} fps to {args.out}")
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    settings = _settings(args)
    avatar = load_avatar(args.avatar or DEFAULT_AVATAR, settings.framing)
    source = _open_live_source(args)
    sinks = SinkFanout(on_error=lambda msg: print(f"puppetcam: {msg}", file=sys.stderr))
    preview: PreviewSink | None = None
    if args.virtual_cam:
        try:
            cam = VirtualCameraSink(avatar.size[0], avatar.size[1], args.fps, mirror=False)
            sinks.add(cam)
            print(f"virtual camera: {cam.device}")
        except VirtualCameraUnavailable as exc:
            print(f"puppetcam: {exc}", file=sys.stderr)
    if args.record:
        sinks.add(VideoFileSink(args.record, args.fps if args.driver is None else source.fps, avatar.size))
    if args.preview:
        preview = PreviewSink()
        sinks.add(preview)
    if not sinks.sinks:
        source.close()
        raise PuppetCamError("Nothing to send the avatar to.", "Add --preview, --record OUT.mp4 or --virtual-cam.")

    puppeteer = Puppeteer(avatar, settings)
    session = LiveSession(puppeteer, source, sinks)
    session.start()
    print(f"live: {source.name} -> {', '.join(s.name for s in sinks.sinks)}"
          + ("  (keys in the preview: c calibrate, q quit)" if preview else "  (Ctrl+C to stop)"))
    try:
        while session.running:
            session._thread.join(timeout=0.1)  # noqa: SLF001 - wait on the loop thread
            if preview is not None:
                if preview.last_key == ord("c"):
                    puppeteer.calibrate()
                    preview.last_key = -1
                if preview.quit_requested:
                    break
    except KeyboardInterrupt:
        pass
    finally:
        session.stop()
        sinks.close()
        puppeteer.close()
    if session.error is not None:
        if isinstance(session.error, PuppetCamError):
            raise session.error
        raise PuppetCamError(f"The live pipeline stopped: {session.error}", "Report this with the command you ran.")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from .gui import run_gui  # the desktop app is the default front end

        return run_gui()
    try:
        return {"render": cmd_render, "live": cmd_live}[args.command](args)
    except PuppetCamError as exc:
        print(f"puppetcam: {exc}", file=sys.stderr)
        return 1
