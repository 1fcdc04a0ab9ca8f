"""Command-line front end: `python -m app render ...` and `python -m app live ...`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import logging
from pathlib import Path
import sys

from . import DEFAULT_AVATAR
from .assign import AssignSettings
from .cast import LAYOUTS, Cast, load_cast
from .framing import Framing
from .capture import CameraSource, FrameSource, VideoFileSource, list_cameras
from .errors import PuppetCamError, VirtualCameraUnavailable
from .pipeline import LiveSession, PipelineSettings, Puppeteer, choose_engine, lookahead_neutral, run_offline
from .renderer_cli import add_renderer_arguments, renderer_choice
from .output_paths import NamedInput, check_output_path
from .options import GAINS, MODE, SMOOTHING, animator_settings
from .sink_registry import SINKS, SinkContext
from .sinks import PreviewSink, SinkFanout, VideoFileSink
from .status_line import LiveStatus, StatusLine, face_found
from .stop_signals import StopRequested, StopSignals

log = logging.getLogger("puppetcam")
MAX_FACES = 8
EXIT_NO_FACE = 3  # the file is written, but no driver frame had a face: worth a script's attention


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
                   help=f"portrait(s) to animate, at most 40 megapixels (default: the bundled {DEFAULT_AVATAR.name})")
    p.add_argument("--size", type=_size, default=AUTO,
                   help="output WxH, 'native' (the portrait's own size) or 'auto' "
                        "(default: auto = 512x512 for one face, 1024x576 for a group portrait)")
    p.add_argument("--faces", type=_faces, default=1,
                   help="animate up to N faces: the faces of one group portrait, or several portraits "
                        "side by side (default: 1)")
    p.add_argument("--layout", choices=LAYOUTS, default="row",
                   help="how several portraits are laid out (default: row)")
    p.add_argument("--assign", type=_order, default=None, metavar="ORDER",
                   help="which avatar face each person drives, in order of arrival, e.g. 2,1 "
                        "(default: by position: the person on the left drives the face on the left)")
    p.add_argument("--fit", action="store_true",
                   help="show the whole portrait with borders instead of cropping it (default: crop to fill)")
    for option in (MODE, *GAINS):  # the options table (app/options.py): one definition for CLI and GUI
        option.add_to(p)
    p.add_argument("--follow-distance", action="store_true",
                   help="let the head grow and shrink when you lean in (default: off)")
    SMOOTHING.add_to(p)
    p.add_argument("--engine", default="auto",
                   help="runtime backend: auto, torch, torch-cuda, onnxruntime, tensorrt (default: auto, "
                        "the fastest one that works here)")
    add_renderer_arguments(p)
    p.add_argument("--verbose", action="store_true",
                   help="say why the engine was chosen and keep MediaPipe's own log lines (default: off)")


def _settings(args: argparse.Namespace) -> PipelineSettings:
    base = PipelineSettings()
    size = (512, 512) if args.size == AUTO else args.size
    framing = None if size is None else Framing(size[0], size[1], "fit" if args.fit else "fill")
    animator = animator_settings(base.animator, vars(args), scale_gain=1.0 if args.follow_distance else 0.0)
    return PipelineSettings(framing=framing, animator=animator, engine=args.engine,
                            mirror_input=getattr(args, "mirror", False), renderer=renderer_choice(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="PuppetCam: animate a portrait with your face. "
                                     "Without a command, the desktop app opens.")
    sub = parser.add_subparsers(dest="command")

    render = sub.add_parser("render", help="animate a portrait with a driving video, to an mp4 file",
                            description="Animate a portrait with a driving video into an H.264 .mp4 that keeps the "
                                        f"driver's sound. Exit codes: 0 done, 1 error, {EXIT_NO_FACE} no face in any "
                                        "driver frame (the file is still written), 130/143 stopped by Ctrl-C/SIGTERM "
                                        "(what was rendered is saved).")
    _common(render)
    render.add_argument("--driver", type=Path, required=True, help="driving video of a face (required)")
    render.add_argument("--out", type=Path, required=True,
                        help="output .mp4 (required; never the driver or an avatar; replaced only once complete)")
    render.add_argument("--quiet", action="store_true", help="no progress bar (default: show one)")

    live = sub.add_parser("live", help="animate live from a webcam (or a video file) to a virtual camera",
                          description="Animate a portrait live. Stop with q or Esc in the preview, by closing it, "
                                      "or with Ctrl-C; a recording is saved either way.")
    _common(live)
    src = live.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, default=None, metavar="N", help="webcam number (default: 0)")
    src.add_argument("--driver", type=Path, default=None,
                     help="a video file instead of a webcam (default: none, use the webcam)")
    live.add_argument("--loop", action="store_true", help="loop the --driver video (default: play it once)")
    live.add_argument("--virtual-cam", action="store_true",
                      help="send the avatar to a virtual camera (default: off)")
    live.add_argument("--fps", type=float, default=30.0, help="virtual camera frame rate (default: 30)")
    live.add_argument("--mirror", action="store_true", help="mirror the camera, selfie view (default: off)")
    live.add_argument("--preview", action="store_true",
                      help="show a preview window; keys: c calibrate, q or Esc quit (default: off)")
    live.add_argument("--sink", action="append", default=[], metavar="NAME",
                      help="also send the output to a registered sink (app/sink_registry.py; here: "
                           f"{', '.join(SINKS.names())}), repeatable (default: none)")
    live.add_argument("--record", type=Path, default=None, metavar="OUT.mp4",
                      help="also record the output to this .mp4, timed as it was shown (default: no recording)")
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


def _processor(args: argparse.Namespace, settings: PipelineSettings) -> Puppeteer:
    """The avatar(s) loaded as a cast, and the puppeteer for it."""
    avatars = args.avatar or [DEFAULT_AVATAR]
    grid = settings.animator.render.grid_size
    choice = choose_engine(settings.engine, grid)
    # One short line; why the other backends were not used is for --verbose.
    print(choice.summary() if getattr(args, "verbose", False)
          else f"engine {getattr(choice.engine, 'name', type(choice.engine).__name__)}")
    size = None if args.size in (None, AUTO) else args.size  # None: the cast's own default size
    cast = load_cast(avatars, args.faces, size, args.fit, args.layout, grid, single=settings.framing)
    _check_assign(args, cast)
    return Puppeteer(cast, settings, engine=choice.engine, assign=AssignSettings(order=args.assign),
                     on_change=lambda msg: print(f"puppetcam: {msg}"))


def _check_assign(args: argparse.Namespace, cast: Cast) -> None:
    n = len(cast.faces)
    if args.assign and max(args.assign) >= n:
        raise PuppetCamError(f"--assign names avatar face {max(args.assign) + 1}, but there are {n}.",
                             f"Number the avatar faces 1 to {n}, left to right.")
    if n > 1:
        print(f"{n} avatar faces ({cast.name}), left to right: "
              + ", ".join(f"{i + 1}: {f.label}" for i, f in enumerate(cast.faces)))


def _inputs(args: argparse.Namespace) -> list[NamedInput]:
    """The files this run reads, which no output may replace."""
    named = [NamedInput("--avatar", Path(a)) for a in (args.avatar or [DEFAULT_AVATAR])]
    if getattr(args, "driver", None) is not None:
        named.append(NamedInput("--driver", args.driver))
    return named


def cmd_render(args: argparse.Namespace) -> int:
    check_output_path(args.out, "--out", _inputs(args))
    settings = _settings(args)
    with StopSignals() as stop:
        source = VideoFileSource(args.driver)
        try:
            processor = _processor(args, settings)
            # Offline, the whole clip is known: its most neutral face is the reference from the
            # first frame on (a clip starting mid-word would otherwise keep the mouth shut).
            neutral = lookahead_neutral(args.driver, settings.mirror_input, max_faces=len(processor.cast.faces))
            if neutral is not None:
                processor.set_neutral(neutral)
            sink = VideoFileSink(args.out, source.fps, processor.cast.size, audio_from=args.driver)
        except BaseException:
            source.close()
            raise
        stop.deferred = True  # from here on a signal stops between frames and the file is kept
        total = source.frame_count
        progress = None
        if not args.quiet:
            from tqdm import tqdm

            progress = tqdm(total=total or None, unit="frame", desc=f"render {args.driver.name}")
        faces_seen = False

        def on_frame(result: object) -> None:
            nonlocal faces_seen
            faces_seen = faces_seen or face_found(result)
            if progress:
                progress.update(1)
            stop.check()

        count, stopped = 0, None
        try:
            # The sink itself, not a SinkFanout: a write error must stop the render at once.
            count = run_offline(processor, source, sink, on_frame=on_frame)  # type: ignore[arg-type]
        except StopRequested as exc:
            stopped = exc
        except BaseException:
            sink.abort()
            raise
        finally:
            source.close()
            if progress:
                progress.close()
        if stopped is not None:
            count = sink.frames_written
            if count == 0:
                sink.abort()
                print(f"stopped: nothing was written; {args.out} was not touched", file=sys.stderr)
                return stopped.exit_code
            sink.close()
            of = f" of {total}" if total else ""
            print(f"stopped: {count}{of} frames written to {args.out}", file=sys.stderr)
            return stopped.exit_code
        if count == 0:
            sink.abort()
            raise PuppetCamError(f"The driving video {args.driver} has no readable frames.",
                                 "Check that the file is a complete video.")
        sink.close()
    print(f"wrote {count} frames at {source.fps:g} fps to {args.out}")
    if not faces_seen:
        print(f"puppetcam: warning: no face was found in any frame of {args.driver}, so {args.out} shows the "
              "still portrait. Use a driving video where a face is clearly visible.", file=sys.stderr)
        return EXIT_NO_FACE
    return 0


@dataclass
class _LiveOutputs:
    """The sinks of a live session and what the status line says about them."""

    sinks: SinkFanout
    record: VideoFileSink | None = None
    preview: PreviewSink | None = None
    virtual_camera: str = "off"


def _live_outputs(args: argparse.Namespace, size: tuple[int, int], source: FrameSource) -> _LiveOutputs:
    out = _LiveOutputs(SinkFanout(on_error=lambda msg: print(f"\npuppetcam: {msg}", file=sys.stderr)))
    context = SinkContext(size, args.fps)
    try:
        if args.virtual_cam:
            try:
                cam = SINKS.open("virtual-camera", context)
                out.sinks.add(cam)
                out.virtual_camera = cam.device
            except VirtualCameraUnavailable as exc:
                out.virtual_camera = "unavailable"
                print(f"puppetcam: {exc}", file=sys.stderr)
        if args.preview:
            out.preview = SINKS.open("preview", context)
            out.sinks.add(out.preview)
        for name in args.sink:
            out.sinks.add(SINKS.open(name, context))
        if args.record:
            fps = args.fps if args.driver is None else source.fps
            out.record = SINKS.open("file", SinkContext(size, fps, path=args.record))
            out.sinks.add(out.record)
    except BaseException:
        out.sinks.close()
        raise
    if not out.sinks.sinks:
        raise PuppetCamError("Nothing to send the avatar to.", "Add --preview, --record OUT.mp4 or --virtual-cam.")
    return out


def cmd_live(args: argparse.Namespace) -> int:
    if args.record is not None:
        check_output_path(args.record, "--record", _inputs(args))
    settings = _settings(args)
    with StopSignals() as stop:
        puppeteer = _processor(args, settings)
        size = puppeteer.cast.size
        try:
            source = _open_live_source(args)
        except BaseException:
            puppeteer.close()
            raise
        try:
            outputs = _live_outputs(args, size, source)
        except BaseException:
            source.close()
            puppeteer.close()
            raise
        stop.deferred = True
        return _run_live(args, puppeteer, source, outputs, stop)


def _run_live(args: argparse.Namespace, puppeteer: Puppeteer, source: FrameSource,
              outputs: _LiveOutputs, stop: StopSignals) -> int:
    preview, record, sinks = outputs.preview, outputs.record, outputs.sinks
    session = LiveSession(puppeteer, source, sinks)
    session.start()
    keys = (" c calibrate," + (" s swap faces 1 and 2," if len(puppeteer.cast.faces) > 1 else "")
            + " q or Esc quit; or Ctrl+C") if preview else " Ctrl+C to stop"
    print(f"live: {source.name} -> {', '.join(s.name for s in sinks.sinks)}  ({keys.strip()})", flush=True)
    status = StatusLine(sys.stderr)
    state = LiveStatus(virtual_camera=outputs.virtual_camera)
    record_failed = False
    try:
        while session.running and stop.requested is None:
            if preview is not None:
                preview.pump(0.03)
                if preview.last_key == ord("c"):
                    puppeteer.calibrate()
                    preview.last_key = -1
                elif preview.last_key == ord("s"):
                    puppeteer.swap(0, 1)
                    preview.last_key = -1
                if preview.quit_requested:
                    break
            else:
                stop.wait(0.1)
            if record is not None and record not in sinks.sinks:
                record_failed = True  # the fan-out dropped it after a write error (already printed)
                break
            result = session.last_result
            if result is not None:
                state.fps = session.fps
                state.latency_ms = result.times.get("track", 0.0) + result.times.get("total", 0.0)
                state.face = face_found(result)
            if record is not None:
                state.recorded_s = record.duration
            status.update(state)
    finally:
        if record is not None:
            # The recording ends when the user stopped, not when the loop has wound down.
            sinks.remove(record)
            record.mark_end()
        session.stop()  # joins the loop thread: no write to the recording is in progress after this
        status.end()
        sinks.close()
        puppeteer.close()
    saved = None
    if record is not None and not record_failed:
        record.close()  # OutputWriteError (e.g. disk full at the end) goes to main()
        saved = f"{record.frames_written} frames ({record.duration:.1f} s) written to {record.path}"
    if stop.requested is not None:
        print(f"stopped: {saved or 'nothing was recorded'}", file=sys.stderr)
        return 128 + stop.requested
    if record_failed:
        return 1
    if session.error is not None:
        if isinstance(session.error, PuppetCamError):
            raise session.error
        raise PuppetCamError(f"The live pipeline stopped: {session.error}", "Report this with the command you ran.")
    if saved:
        print(f"recording saved: {saved}")
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
    except StopRequested as exc:
        # Before anything was written (loading the avatar, starting the models).
        print(f"stopped: nothing was written ({exc})", file=sys.stderr)
        return exc.exit_code
    except PuppetCamError as exc:
        print(f"puppetcam: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)  # e.g. 2: a learned renderer without its weights
