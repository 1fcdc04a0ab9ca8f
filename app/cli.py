"""Command-line front end: `python -m app render ...` and `python -m app live ...`."""

from __future__ import annotations

import argparse
from dataclasses import replace
import logging
from pathlib import Path
import sys

from . import DEFAULT_AVATAR
from .assign import AssignSettings
from .avatar import load_avatar
from .cast import LAYOUTS, load_cast
from .composite import Framing
from .capture import CameraSource, FrameSource, VideoFileSource, list_cameras
from .errors import PuppetCamError, VirtualCameraUnavailable
from .group import GroupPuppeteer
from .pipeline import (FrameProcessor, LiveSession, PipelineSettings, Puppeteer, choose_engine, lookahead_neutral,
                       run_offline)
from .retarget import RetargetSettings
from .sinks import PreviewSink, SinkFanout, VideoFileSink, VirtualCameraSink

log = logging.getLogger("puppetcam")
MAX_FACES = 8


AUTO = "auto"


def _size(text: str) -> tuple[int, int] | str | None:
    if text == "native":
        return None
    if text == AUTO:
        return AUTO
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 512x512, 'native' or 'auto', not {text!r}")
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise argparse.ArgumentTypeError("size must be between 16 and 4096 pixels on each side")
    return w, h


def _faces(text: str) -> int:
    n = int(text)
    if not 1 <= n <= MAX_FACES:
        raise argparse.ArgumentTypeError(f"--faces must be between 1 and {MAX_FACES}")
    return n


def _order(text: str) -> tuple[int, ...]:
    try:
        order = tuple(int(v) - 1 for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--assign must list avatar face numbers like 2,1, not {text!r}")
    if min(order) < 0:
        raise argparse.ArgumentTypeError("avatar faces are numbered from 1, left to right")
    return order


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--avatar", type=Path, nargs="+", default=None, metavar="IMAGE",
                   help=f"portrait(s) to animate (default: the bundled {DEFAULT_AVATAR.name})")
    p.add_argument("--size", type=_size, default=AUTO,
                   help="output WxH, 'native', or 'auto' (512x512 a face; 1024x576 for a group portrait)")
    p.add_argument("--faces", type=_faces, default=1,
                   help="animate up to N faces: the faces of one group portrait, or several portraits side by side")
    p.add_argument("--layout", choices=LAYOUTS, default="row", help="how several portraits are laid out")
    p.add_argument("--assign", type=_order, default=None, metavar="ORDER",
                   help="which avatar face each person drives, in order of arrival, e.g. 2,1 "
                        "(default: by position: the person on the left drives the face on the left)")
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
    size = (512, 512) if args.size == AUTO else args.size
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


def _processor(args: argparse.Namespace, settings: PipelineSettings) -> tuple[FrameProcessor, tuple[int, int]]:
    """The avatar(s) loaded and the per-frame worker for them, and the output size."""
    avatars = args.avatar or [DEFAULT_AVATAR]
    choice = choose_engine(settings.engine, settings.animator.render.grid_size)
    print(choice.summary())
    if args.faces == 1 and len(avatars) == 1:
        avatar = load_avatar(avatars[0], settings.framing, settings.animator.render.grid_size)
        return Puppeteer(avatar, settings, engine=choice.engine), avatar.size
    size = None if args.size in (None, AUTO) else args.size  # None: the cast's own default size
    cast = load_cast(avatars, args.faces, size, args.fit, args.layout, settings.animator.render.grid_size)
    if args.assign and max(args.assign) >= len(cast.faces):
        raise PuppetCamError(f"--assign names avatar face {max(args.assign) + 1}, but there are {len(cast.faces)}.",
                             f"Number the avatar faces 1 to {len(cast.faces)}, left to right.")
    print(f"{len(cast.faces)} avatar faces ({cast.name}), left to right: "
          + ", ".join(f"{i + 1}: {f.label}" for i, f in enumerate(cast.faces)))
    group = GroupPuppeteer(cast, settings, AssignSettings(order=args.assign), engine=choice.engine,
                           on_change=lambda msg: print(f"puppetcam: {msg}"))
    return group, cast.size


def cmd_render(args: argparse.Namespace) -> int:
    settings = _settings(args)
    source = VideoFileSource(args.driver)
    try:
        processor, size = _processor(args, settings)
    except BaseException:
        source.close()
        raise
    if isinstance(processor, Puppeteer):
        # Offline, the whole clip is known: its most neutral face is the reference from the
        # first frame on (a clip starting mid-word would otherwise keep the mouth shut).
        neutral = lookahead_neutral(args.driver, settings.mirror_input)
        if neutral is not None:
            processor.animator.set_neutral(neutral)
    sink = VideoFileSink(args.out, source.fps, size)
    progress = None
    if not args.quiet:
        from tqdm import tqdm

        progress = tqdm(total=source.frame_count or None, unit="frame", desc=f"render {args.driver.name}")
    try:
        with SinkFanout([sink]) as sinks:
            count = run_offline(processor, source, sinks, on_frame=(lambda r: progress.update(1)) if progress else None)
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
    puppeteer, size = _processor(args, settings)
    try:
        source = _open_live_source(args)
    except BaseException:
        puppeteer.close()
        raise
    sinks = SinkFanout(on_error=lambda msg: print(f"puppetcam: {msg}", file=sys.stderr))
    preview: PreviewSink | None = None
    if args.virtual_cam:
        try:
            cam = VirtualCameraSink(size[0], size[1], args.fps, mirror=False)
            sinks.add(cam)
            print(f"virtual camera: {cam.device}")
        except VirtualCameraUnavailable as exc:
            print(f"puppetcam: {exc}", file=sys.stderr)
    if args.record:
        sinks.add(VideoFileSink(args.record, args.fps if args.driver is None else source.fps, size))
    if args.preview:
        preview = PreviewSink()
        sinks.add(preview)
    if not sinks.sinks:
        source.close()
        puppeteer.close()
        raise PuppetCamError("Nothing to send the avatar to.", "Add --preview, --record OUT.mp4 or --virtual-cam.")

    session = LiveSession(puppeteer, source, sinks)
    session.start()
    print(f"live: {source.name} -> {', '.join(s.name for s in sinks.sinks)}"
          + (f"  (keys in the preview: c calibrate,{' s swap faces 1 and 2,' if isinstance(puppeteer, GroupPuppeteer) else ''}"
             " q quit)" if preview else "  (Ctrl+C to stop)"))
    try:
        while session.running:
            session._thread.join(timeout=0.1)  # noqa: SLF001 - wait on the loop thread
            if preview is not None:
                if preview.last_key == ord("c"):
                    puppeteer.calibrate()
                    preview.last_key = -1
                elif preview.last_key == ord("s") and isinstance(puppeteer, GroupPuppeteer):
                    puppeteer.swap(0, 1)
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
