"""The main window's driving source: cameras found, a video file, no camera at all.
A mixin of MainWindow (app/gui/main_window.py), split off by job; it uses the window's
controller, source panel, settings and message helpers."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from app import ASSETS_DIR

from .controller import SourceSpec

DEMO_CLIP = ASSETS_DIR / "demo" / "driver.mp4"  # offered when there is no camera, if bundled
VIDEO_FILTER = "Videos (*.mp4 *.mov *.mkv *.avi *.webm *.m4v);;All files (*)"


class SourceHandling:
    def _cameras_listed(self, cameras: list[int]) -> None:
        self.cameras = list(cameras)
        self._rebuild_source_combo()
        if not self._source_chosen:
            self._source_chosen = True
            s = self.settings
            if s.source_kind == "file" and s.video_path and Path(s.video_path).is_file():
                self.use_video(s.video_path)
            elif self.cameras:
                self.use_camera(s.camera_index if s.camera_index in self.cameras else self.cameras[0])
            else:
                self._no_camera()
        elif not self.cameras and (self.controller.source_spec is None):
            self._no_camera()

    def _rebuild_source_combo(self) -> None:
        self.source_box.list_sources(self.cameras, self.settings.video_path, self.controller.source_spec)

    def _no_camera(self) -> None:
        self.driver_view.show_text("No camera found")
        actions = [("Open video file\u2026", self.open_video_dialog)]
        last = self.settings.video_path
        if last and Path(last).is_file():
            actions.insert(0, (f"Use {Path(last).name}", lambda: self.use_video(last)))
        if DEMO_CLIP.is_file():
            actions.insert(0, ("Play the demo clip", lambda: self.use_video(str(DEMO_CLIP))))
        self.show_message("No camera was found on this computer. Plug one in and press \u21bb, "
                          "or drive the avatar with a video file (it loops).", "warning", "source", actions)

    def _source_picked(self, index: int) -> None:
        spec = self.source_combo.itemData(index)
        if isinstance(spec, SourceSpec) and spec != self.controller.source_spec:
            self.controller.set_source(spec)

    def use_camera(self, index: int) -> None:
        self.settings.source_kind, self.settings.camera_index = "camera", int(index)
        self.controller.set_source(SourceSpec("camera", camera=int(index)))
        self._flash(f"Opening camera {index}\u2026")

    def use_video(self, path: str) -> None:
        self.settings.source_kind, self.settings.video_path = "file", str(path)
        self.controller.set_source(SourceSpec("file", path=str(path)))
        self._flash(f"Opening {Path(path).name}\u2026")

    def open_video_dialog(self) -> None:
        start = self.settings.video_path or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a driving video", start, VIDEO_FILTER)
        if path:
            self.use_video(path)

    def _source_changed(self, label: str) -> None:
        spec = self.controller.source_spec
        if spec is not None:
            self.settings.source_kind = spec.kind
            if spec.kind == "file":
                self.settings.video_path = spec.path
            else:
                self.settings.camera_index = spec.camera
        self.driver_panel.title.setText(f"CAMERA \u00b7 {label}" if spec and spec.kind == "camera"
                                        else f"DRIVER \u00b7 {label}")
        self._rebuild_source_combo()
        self.message_bar.dismiss("source")
        self._save_soon()

    def _source_failed(self, message: str) -> None:
        self.show_message(message, "error", "source", [("Open video file\u2026", self.open_video_dialog)])
        self._rebuild_source_combo()

    def _session_failed(self, message: str) -> None:
        self.driver_view.show_text("The source stopped")
        self.show_message(message, "error", "source", [("Open video file\u2026", self.open_video_dialog),
                                                       ("Look for cameras", self.controller.refresh_cameras)])
