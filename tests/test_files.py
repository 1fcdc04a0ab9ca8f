"""Files people can trust (issue 12): outputs never replace inputs, writes are atomic and
checked, Ctrl-C/SIGTERM leave a playable file, live recordings keep true time, huge images are
refused from their header, a faceless driver is flagged, and every message names a real option.

Subprocess tests run `python -m app` on short real clips (cut to tmp_path) so that each stays
within a few seconds on a 2-core CI machine.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from app.avatar import MAX_IMAGE_PIXELS, read_image
from app.cli import EXIT_NO_FACE, build_parser, main
from app.errors import AvatarError
from app.output_paths import NamedInput, OutputPathError, check_output_path
from app.video_writer import AtomicVideoWriter

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--size", "128x128"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cut(src: Path, dst: Path, frames: int, fps: float | None = None, stride: int = 1) -> Path:
    """The first `frames` (every `stride`-th) frames of a real clip as a small H.264 file."""
    cap = cv2.VideoCapture(str(src))
    rate = fps or cap.get(cv2.CAP_PROP_FPS)
    writer = None
    n = i = 0
    while n < frames:
        ok, image = cap.read()
        if not ok:
            break
        i += 1
        if (i - 1) % stride:
            continue
        image = cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA)
        if writer is None:
            writer = AtomicVideoWriter(dst, (256, 256), rate)
        writer.write(image)
        n += 1
    cap.release()
    writer.finish()
    return dst


def _run_app(args: list[str], env_extra: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "app", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _decode_all(path: Path) -> tuple[int, list[float]]:
    """Every video frame decoded (a truncated or index-less file raises here); their times."""
    times = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            assert frame.to_ndarray(format="bgr24").shape[2] == 3
            times.append(float(frame.time))
    return len(times), times


def _streams(path: Path) -> dict[str, tuple[str, float]]:
    with av.open(str(path)) as c:
        return {s.type: (s.codec_context.name, float(s.duration * s.time_base)) for s in c.streams}


# --- 1. an output never replaces an input -------------------------------------------------

@pytest.fixture
def driver_copy(data_dir: Path, tmp_path: Path) -> Path:
    return _cut(data_dir / "driving" / "lp_d0.mp4", tmp_path / "driver.mp4", 30)


def test_render_refuses_to_overwrite_the_driver_the_avatar_or_a_link_to_them(
        data_dir: Path, tmp_path: Path, driver_copy: Path, capsys) -> None:
    avatar = tmp_path / "portrait.jpg"
    avatar.write_bytes((data_dir / "portraits" / "lp_s5.jpg").read_bytes())
    hard = tmp_path / "hard.mp4"
    os.link(driver_copy, hard)
    soft = tmp_path / "soft.mp4"
    soft.symlink_to(driver_copy)
    sneaky = tmp_path / "sub" / ".." / "driver.mp4"
    (tmp_path / "sub").mkdir()
    before = {p: _sha(p) for p in (driver_copy, avatar)}
    cases = [("render", driver_copy, "--out", "--driver"), ("render", avatar, "--out", "--avatar"),
             ("render", hard, "--out", "--driver"), ("render", soft, "--out", "--driver"),
             ("render", sneaky, "--out", "--driver"), ("live", driver_copy, "--record", "--driver")]
    for command, out, option, victim in cases:
        rc = main([command, "--driver", str(driver_copy), "--avatar", str(avatar), option, str(out), *SMALL])
        err = capsys.readouterr().err
        assert rc == 1, (command, out)
        assert "same file as" in err and victim in err and "destroy" in err, err
    assert {p: _sha(p) for p in before} == before
    assert os.stat(hard).st_nlink == 2 and _sha(hard) == before[driver_copy]
    assert not list(tmp_path.glob(".*partial*"))


def test_output_path_rules(tmp_path: Path) -> None:
    src = tmp_path / "a.mp4"
    src.write_bytes(b"x")
    with pytest.raises(OutputPathError, match=r"\.mp4"):
        check_output_path(tmp_path / "out.avi", "--out", [NamedInput("--driver", src)])
    with pytest.raises(OutputPathError, match="folder"):
        check_output_path(tmp_path, "--out", [])
    assert check_output_path(tmp_path / "b.mp4", "--out", [NamedInput("--driver", src)]) == tmp_path / "b.mp4"


# --- 2. atomic, checked writes ------------------------------------------------------------

def test_writer_is_atomic_and_keeps_the_old_file_until_complete(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    target.write_bytes(b"the previous render")
    writer = AtomicVideoWriter(target, (65, 49), 25)  # odd sides: cropped to even
    for i in range(10):
        writer.write(np.full((49, 65, 3), i * 20, np.uint8))
        assert target.read_bytes() == b"the previous render"
    writer.finish()
    with av.open(str(target)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.name, s.codec_context.format.name) == ("h264", "yuv420p")
        assert (s.codec_context.width, s.codec_context.height) == (64, 48)
    head = target.read_bytes()[:4096]
    assert head.find(b"moov") != -1 and (head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat"))
    assert _decode_all(target)[0] == 10
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]

    aborted = AtomicVideoWriter(tmp_path / "never.mp4", (32, 32), 25)
    aborted.write(np.zeros((32, 32, 3), np.uint8))
    aborted.abort()
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


@pytest.fixture
def full_disk(tmp_path: Path):
    """A 3 MB tmpfs with about 2 KB left: a render of a few dozen frames cannot fit."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc})")
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not allowed here (needs root): {done.stderr.strip()}")
    try:
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        (mount / "filler").write_bytes(b"\0" * (free - 2 * 1024))
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=20)


def test_render_and_live_record_on_a_full_disk_fail_clearly(full_disk: Path, driver_copy: Path) -> None:
    for args in (["render", "--quiet", "--out"], ["live", "--record"]):
        out = full_disk / "out.mp4"
        proc = _run_app([*args, str(out), "--driver", str(driver_copy), "--size", "256x256"])
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 1, (args, stdout, stderr)
        assert "No space left on device" in stderr and str(out) in stderr, stderr
        assert "Traceback" not in stderr and "wrote" not in stdout and "saved" not in stdout
        assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]  # no partial file left


# --- 2. Ctrl-C and SIGTERM: the file is finished and plays --------------------------------

def _wait_for_partial(folder: Path, proc: subprocess.Popen, then_s: float, timeout: float = 90.0) -> None:
    """Until the render's temporary file exists (models loaded, frames flowing), then `then_s` more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if list(folder.glob(".*.partial.mp4")):
            time.sleep(then_s)
            return
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the render never started writing")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_render_stopped_by_a_signal_leaves_a_playable_file(data_dir: Path, tmp_path: Path, sig) -> None:
    driver = data_dir / "driving" / "lp_d3.mp4"  # 354 frames with sound: far from done when stopped
    out = tmp_path / "render.mp4"
    proc = _run_app(["render", "--driver", str(driver), "--out", str(out), *SMALL])
    _wait_for_partial(tmp_path, proc, 1.0)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    m = re.search(r"stopped: (\d+) of 354 frames written to (\S+)", stderr)
    assert m and Path(m.group(2)) == out, stderr
    written = int(m.group(1))
    assert 0 < written < 354
    count, times = _decode_all(out)
    assert count == written
    streams = _streams(out)
    assert streams["video"][0] == "h264" and streams["audio"][0] == "aac"
    assert abs(streams["audio"][1] - written / 30.0) < 0.1  # the sound is cut where the video stops
    # MediaPipe's and TFLite's start-up lines are filtered; the engine is one short line.
    assert not re.search(r"^[IWE]\d{4} |INFO: Created TensorFlow", stderr, re.M), stderr
    assert re.search(r"^engine \S+$", stdout, re.M) and "not used" not in stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_live_record_stopped_by_a_signal_plays_as_long_as_the_session(data_dir: Path, tmp_path: Path, sig) -> None:
    """SIGINT with the preview window open (offscreen Qt): Ctrl-C ends the preview too.
    SIGTERM with a 3 fps driver: frames repeated while waiting must not stretch the file."""
    if sig == signal.SIGINT:
        driver, extra = _cut(data_dir / "driving" / "lp_d0.mp4", tmp_path / "d.mp4", 40), ["--preview"]
    else:
        driver, extra = _cut(data_dir / "driving" / "lp_d0.mp4", tmp_path / "d.mp4", 12, fps=3, stride=6), []
    out = tmp_path / "rec.mp4"
    proc = _run_app(["live", "--driver", str(driver), "--loop", "--record", str(out), *SMALL, *extra])
    started = None
    for line in proc.stdout:  # "live: ..." is printed as the session starts
        if line.startswith("live:"):
            started = time.monotonic()
            break
    assert started is not None, proc.communicate()
    time.sleep(4.0)
    proc.send_signal(sig)
    session = time.monotonic() - started
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, stderr
    assert "Traceback" not in stderr
    m = re.search(r"stopped: (\d+) frames \(([\d.]+) s\) written to (\S+)", stderr)
    assert m and Path(m.group(3)) == out, stderr
    count, times = _decode_all(out)
    assert count >= int(m.group(1)) >= 3
    duration = _streams(out)["video"][1]
    # True timing: never longer than the session, and short only by the start-up of the first frame.
    assert session - 1.5 < duration < session + 0.2, (duration, session)
    assert all(b > a for a, b in zip(times, times[1:]))
    assert "live:" in stderr and "fps" in stderr and "latency" in stderr and "face yes" in stderr


def test_wall_clock_timestamps_follow_the_clock_not_the_frame_rate(tmp_path: Path) -> None:
    now = [100.0]
    writer = AtomicVideoWriter(tmp_path / "w.mp4", (64, 64), 30.0, clock=lambda: now[0])
    shown_at = [0.0, 0.5, 0.55, 2.0, 2.0, 5.25]  # a slow, bursty pipeline; two frames in one ms
    for t in shown_at:
        now[0] = 100.0 + t
        writer.write(np.full((64, 64, 3), int(t * 40), np.uint8))
    now[0] = 112.0  # stopped 12 s after the first frame
    writer.finish()
    count, times = _decode_all(tmp_path / "w.mp4")
    assert times[:6] == pytest.approx([0.0, 0.5, 0.55, 2.0, 2.001, 5.25], abs=1e-3)
    assert times[-1] == pytest.approx(12.0, abs=1e-3)  # the last frame is held until the stop
    assert writer.duration == pytest.approx(12.0, abs=0.01)


# --- 4. images are checked from their header ----------------------------------------------

def _black_png(path: Path, width: int, height: int) -> Path:
    """A 1-bit all-black PNG: huge in pixels, a few hundred KB on disk."""
    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(6)
    data = bytearray()
    for _ in range(height // 1000):
        data += comp.compress(row * 1000)
    data += comp.compress(row * (height % 1000)) + comp.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", bytes(data)) + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_avatars_are_refused_before_decoding(tmp_path: Path) -> None:
    bomb = _black_png(tmp_path / "bomb.png", 30000, 30000)
    assert bomb.stat().st_size < 1_000_000
    just_over = _black_png(tmp_path / "big.png", 8000, 5001)
    assert 8000 * 5001 > MAX_IMAGE_PIXELS
    with pytest.raises(AvatarError, match="megapixel limit"):
        read_image(bomb)
    with pytest.raises(AvatarError, match=r"8000x5001 pixels, over the 40 megapixel limit"):
        read_image(just_over)


def test_render_with_a_bomb_avatar_exits_cleanly(tmp_path: Path, driver_copy: Path) -> None:
    bomb = _black_png(tmp_path / "bomb.png", 60000, 60000)
    proc = _run_app(["render", "--driver", str(driver_copy), "--avatar", str(bomb), "--out", str(tmp_path / "o.mp4")])
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert "40 megapixel limit" in stderr and "Traceback" not in stderr and "cv2.error" not in stderr
    assert not (tmp_path / "o.mp4").exists()


# --- 5. a driver without any face ---------------------------------------------------------

def test_driver_without_a_face_writes_the_file_warns_and_exits_3(data_dir: Path, tmp_path: Path, capsys) -> None:
    # A cat: MediaPipe finds no human face in it (its face mesh does fit one to the dog.jpg).
    cat = cv2.resize(cv2.imread(str(data_dir / "negative" / "cat.jpg")), (256, 256))
    driver = tmp_path / "cat.mp4"
    writer = AtomicVideoWriter(driver, (256, 256), 25)
    for i in range(20):  # a slowly panning still: a video, but never a human face
        writer.write(np.roll(cat, i * 3, axis=1))
    writer.finish()
    out = tmp_path / "out.mp4"
    rc = main(["render", "--driver", str(driver), "--out", str(out), "--quiet", *SMALL])
    captured = capsys.readouterr()
    assert rc == EXIT_NO_FACE == 3
    assert "no face was found in any frame" in captured.err and str(driver) in captured.err
    assert _decode_all(out)[0] == 20


# --- sound carried across -----------------------------------------------------------------

def test_render_of_lp_d3_is_h264_with_the_drivers_aac_sound(data_dir: Path, tmp_path: Path) -> None:
    driver = data_dir / "driving" / "lp_d3.mp4"
    assert _streams(driver)["audio"][0] == "aac"
    out = tmp_path / "d3.mp4"
    assert main(["render", "--driver", str(driver), "--out", str(out), "--quiet", "--size", "96x96"]) == 0
    streams = _streams(out)
    assert streams["video"] == ("h264", pytest.approx(11.8, abs=0.05))
    assert streams["audio"][0] == "aac"
    assert streams["audio"][1] == pytest.approx(_streams(driver)["audio"][1], abs=0.05)
    assert _decode_all(out)[0] == 354


BROWSER_PAGE = """<html><body><video id="v" src="clip.mp4" preload="auto" muted></video><script>
const v = document.getElementById('v');
v.addEventListener('loadedmetadata', () => document.body.setAttribute('data-duration', v.duration));
v.addEventListener('error', () => document.body.setAttribute('data-error', v.error ? v.error.code : 'unknown'));
</script></body></html>"""


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="no Chromium here (Debian/Ubuntu: apt install chromium)")
def test_a_render_plays_in_a_browser(data_dir: Path, tmp_path: Path) -> None:
    """A headless Chromium loads the render in a <video> element and reads its duration."""
    driver = data_dir / "driving" / "lp_d0.mp4"
    out = tmp_path / "clip.mp4"
    assert main(["render", "--driver", str(driver), "--out", str(out), "--quiet", "--size", "128x128"]) == 0
    (tmp_path / "index.html").write_text(BROWSER_PAGE)
    dom = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                          "--virtual-time-budget=5000", "--dump-dom", (tmp_path / "index.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'data-duration="([0-9.]+)"', dom)
    assert found, f"the browser did not load the video: {re.search(r'<body[^>]*>', dom)}"
    assert float(found.group(1)) == pytest.approx(78 / 25, abs=0.05)


def test_render_reencodes_other_audio_to_aac_in_sync(data_dir: Path, tmp_path: Path) -> None:
    """A driver whose sound is PCM (as a camera's .mov may hold) with a tone starting at 0.6 s:
    the output has AAC sound, and the tone still starts at 0.6 s."""
    driver = tmp_path / "pcm.mkv"
    rate, fps, frames = 48000, 25, 40
    cap = cv2.VideoCapture(str(data_dir / "driving" / "lp_d0.mp4"))
    with av.open(str(driver), "w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.width = v.height = 256
        v.pix_fmt = "yuv420p"
        a = c.add_stream("pcm_s16le", rate=rate, layout="mono")
        for i in range(frames):
            ok, image = cap.read()
            f = av.VideoFrame.from_ndarray(cv2.resize(image, (256, 256)), format="bgr24")
            f.pts = i
            f.time_base = Fraction(1, fps)
            for p in v.encode(f):
                c.mux(p)
        t = np.arange(int(rate * frames / fps)) / rate
        tone = ((t >= 0.6) * 0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
        af = av.AudioFrame.from_ndarray(tone[None], format="s16", layout="mono")
        af.sample_rate, af.pts, af.time_base = rate, 0, Fraction(1, rate)
        for p in a.encode(af):
            c.mux(p)
        for s in (v, a):
            for p in s.encode(None):
                c.mux(p)
    cap.release()
    out = tmp_path / "out.mp4"
    assert main(["render", "--driver", str(driver), "--out", str(out), "--quiet", *SMALL]) == 0
    assert _streams(out)["audio"][0] == "aac"
    with av.open(str(out)) as c:
        samples = np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)])
        sr = c.streams.audio[0].codec_context.sample_rate
    loud = np.flatnonzero(np.abs(samples) > 0.1)
    assert loud.size and loud[0] / sr == pytest.approx(0.6, abs=0.03)
    assert len(samples) / sr == pytest.approx(frames / fps, abs=0.05)


# --- 6. messages and help name options that exist -----------------------------------------

def test_every_option_has_help_with_its_default_and_messages_name_real_options() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001 - argparse has no public API
    for name, p in sub.choices.items():
        for action in p._actions:  # noqa: SLF001
            if action.dest == "help":
                continue
            assert action.help, (name, action.option_strings)
            assert "default" in action.help or "required" in action.help, (name, action.option_strings, action.help)
    options = {o for p in sub.choices.values() for a in p._actions for o in a.option_strings}  # noqa: SLF001
    for path in (REPO / "app").rglob("*.py"):
        assert "--output FILE" not in path.read_text(), path
    from app.capture import VideoFileSource
    from app.errors import CaptureError

    with pytest.raises(CaptureError, match="--camera N") as info:
        VideoFileSource(Path("0"))
    assert "--driver 0" not in str(info.value)
    assert "--camera" in options and "--record" in options


# --- 7. the preview ends on q, Esc or closing the window (offscreen Qt) --------------------

@pytest.mark.parametrize("how", ["q", "escape", "close"])
def test_live_preview_ends_on_q_escape_or_closing_the_window(driver_copy: Path, tmp_path: Path, how: str) -> None:
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    acted: list[str] = []

    def act() -> None:
        shown = [w for w in app.topLevelWidgets() if w.isVisible() and w.windowTitle() == "PuppetCam"]
        if not shown or acted:
            return
        acted.append(how)
        if how == "close":
            shown[0].close()
        else:
            QTest.keyClick(shown[0], Qt.Key.Key_Q if how == "q" else Qt.Key.Key_Escape)

    timer = QTimer()
    timer.timeout.connect(act)
    timer.start(200)
    # A watchdog: if the window never closes, Ctrl-C ends the test with 130 instead of a hang.
    watchdog = QTimer()
    watchdog.setSingleShot(True)
    watchdog.timeout.connect(lambda: os.kill(os.getpid(), signal.SIGINT))
    watchdog.start(60_000)
    t0 = time.monotonic()
    try:
        rc = main(["live", "--driver", str(driver_copy), "--loop", "--preview", "--record",
                   str(tmp_path / "rec.mp4"), *SMALL])
    finally:
        timer.stop()
        watchdog.stop()
    assert acted == [how]
    assert rc == 0 and time.monotonic() - t0 < 60
    assert not [w for w in app.topLevelWidgets() if w.isVisible()]
    assert _decode_all(tmp_path / "rec.mp4")[0] > 0


# --- 8. tools without the footage folder --------------------------------------------------

@pytest.mark.parametrize("tool", ["app.bench", "app.contact_sheet", "app.evaluate", "app.evaluate.closeups"])
def test_tools_without_footage_say_what_they_need(tmp_path: Path, tool: str) -> None:
    env = {**os.environ, "PUPPETCAM_DATA": str(tmp_path / "nowhere")}
    done = subprocess.run([sys.executable, "-m", tool], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "PUPPETCAM_DATA" in done.stderr and str(tmp_path / "nowhere") in done.stderr


def test_puppetcam_data_points_the_tests_elsewhere(tmp_path: Path) -> None:
    env = {**os.environ, "PUPPETCAM_DATA": str(tmp_path)}
    code = "from tests.conftest import DATA_DIR; print(DATA_DIR)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == str(tmp_path)
