"""PuppetCam's desktop app (PySide6): `python -m app` with no subcommand opens it.

- main_window.py: the window (widgets and wiring only)
- controller.py: owns the Puppeteer, LiveSession, source and outputs; no widgets, testable
- gallery.py: the avatar gallery (bundled + the user's own, in AppDataLocation/avatars)
- expressions.py: hold-to-blend expression presets, pure functions of Motion
- settings_store.py: QSettings persistence
- widgets.py: video views, message bar, sliders, theme
- screenshot.py: renders docs/screenshot_app.png (run under Xvfb, see docs/make_screenshot.sh)
"""

from __future__ import annotations

import sys


def run_gui(argv: list[str] | None = None) -> int:
    """Open the main window and run the Qt event loop; returns the exit status."""
    from .main_window import platform_problem

    problem = platform_problem()
    if problem is not None:
        print(f"puppetcam: the desktop app cannot open a window: {problem}. Run it from a desktop "
              "session, or use the command line: python -m app live --driver VIDEO.mp4 --virtual-cam",
              file=sys.stderr)
        return 1

    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow
    from .settings_store import APPLICATION, ORGANIZATION, SettingsStore
    from .widgets import apply_theme

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("PuppetCam")
    apply_theme(app)
    window = MainWindow(SettingsStore())
    window.show()
    return app.exec()


__all__ = ["run_gui"]
