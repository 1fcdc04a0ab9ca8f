"""Render the README screenshot: the real window, driven by a real video, grabbed mid-animation.

    xvfb-run -s "-screen 0 1600x1000x24" python -m app.gui.screenshot \
        --driver ../shared/data/driving/lp_d3.mp4 --out docs/screenshot_app.png

Several faces: `--faces 2 --avatar ../shared/data/portraits/fr_two_people.jpg` with a
two-person driving video (`python -m app.multiclip A.mp4 B.mp4 --out two.mp4` builds one).

Uses throwaway settings and avatar folders, so the user's own settings are never touched.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import tempfile
import time

from app import DEFAULT_AVATAR

MAX_BYTES = 500_000


def _wait(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.gui.screenshot", description=__doc__.split("\n")[0])
    parser.add_argument("--driver", type=Path, required=True, help="driving video (looped)")
    parser.add_argument("--avatar", type=Path, default=DEFAULT_AVATAR)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshot_app.png"))
    parser.add_argument("--at", type=float, default=4.0, help="seconds of animation before the grab")
    parser.add_argument("--size", default="1320x820", help="window size WxH")
    parser.add_argument("--faces", type=int, default=1, help="avatar faces to animate (1-4)")
    args = parser.parse_args(argv)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow
    from .settings_store import AppSettings, SettingsStore
    from .widgets import apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("PuppetCam")
    app.setApplicationName("PuppetCam")
    apply_theme(app)
    with tempfile.TemporaryDirectory() as tmp:
        store = SettingsStore(QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat))
        store.save(AppSettings(source_kind="file", video_path=str(args.driver.resolve()),
                               avatar=str(args.avatar.resolve()), faces=args.faces))
        window = MainWindow(store, avatars_dir=Path(tmp) / "avatars")
        w, h = (int(v) for v in args.size.split("x"))
        window.resize(w, h)
        window.show()
        c = window.controller
        deadline = time.monotonic() + 60
        while c.frames_out < 5 and time.monotonic() < deadline:
            _wait(app, 0.1)
        if c.frames_out < 5:
            print("screenshot: no frames came out of the pipeline", file=sys.stderr)
            window.close()
            return 1
        _wait(app, args.at)
        pixmap = window.grab()
        window.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image = pixmap.toImage()
    image.save(str(args.out), "PNG", 0)  # 0: smallest file
    size = args.out.stat().st_size
    if size > MAX_BYTES:
        # A dark UI plus two pictures: a good 256-colour palette is near-lossless here.
        try:
            from PIL import Image

            with Image.open(args.out) as full:
                rgb = full.convert("RGB")
            rgb.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG) \
               .save(args.out, optimize=True)
        except ImportError:  # Pillow is optional; Qt's own palette is grainier but small
            from PySide6.QtCore import Qt
            from PySide6.QtGui import QImage

            image.convertToFormat(QImage.Format.Format_Indexed8, Qt.ImageConversionFlag.DiffuseDither) \
                .save(str(args.out), "PNG", 0)
        size = args.out.stat().st_size
    print(f"wrote {args.out} ({image.width()}x{image.height()}, {size // 1024} KB) after "
          f"{c.frames_out} frames, {c.output_fps:.1f} fps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
