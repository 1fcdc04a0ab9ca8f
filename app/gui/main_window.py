"""The main window: live views, avatar gallery, controls, outputs. Widgets and wiring only;
the pipeline is driven by `Controller` (app/gui/controller.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
import sys
import time

from PySide6.QtCore import QEvent, QObject, QStandardPaths, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app import DEFAULT_AVATAR
from app.options import MOTION_OPTIONS

from .controller import Controller, FrameView
from .gallery import BUNDLED_DIR, image_files, user_avatar_dir
from .window_avatars import AvatarHandling
from .window_sources import SourceHandling
from .panels.expressions import EXPRESSION_KEYS, ExpressionPanel
from .panels.motion import MotionPanel
from .panels.output import OutputPanel, set_status
from .panels.source import SourcePanel
from .panels.views import ViewsPane
from .renderer_picker import RendererPicker
from .settings_store import AppSettings, SettingsStore



def default_record_dir() -> Path:
    movies = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MoviesLocation)
    return Path(movies or Path.home()) / "PuppetCam"


class MainWindow(AvatarHandling, SourceHandling, QMainWindow):
    def __init__(self, store: SettingsStore, avatars_dir: Path | None = None, vcam_backend: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.settings: AppSettings = store.load()
        self.avatars_dir = Path(avatars_dir) if avatars_dir else user_avatar_dir()
        self.cameras: list[int] = []
        self._source_chosen = False
        self._recording_started: float | None = None
        self.last_message = ""

        self.setWindowTitle("PuppetCam")
        self.setAcceptDrops(True)
        self.controller = Controller(self.settings.pipeline_settings(), fps=self.settings.fps,
                                     vcam_backend=vcam_backend, parent=self)
        self.controller.overlay = self.settings.overlay
        self._build_ui()
        self._connect()
        self._restore_geometry()

        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(250)
        self._stats_timer.timeout.connect(self._update_stats)
        self._stats_timer.start()
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(600)
        self._save_timer.timeout.connect(self.save_settings)

        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

        self.gallery.populate(image_files(BUNDLED_DIR), image_files(self.avatars_dir))
        self.controller.start(self.settings.avatar if Path(self.settings.avatar).is_file() else DEFAULT_AVATAR)
        if self.settings.faces > 1:
            self.controller.set_faces(self.settings.faces)
        self.controller.refresh_cameras()
        if self.settings.virtual_camera:
            self.vcam_switch.setChecked(True)

    # ================================================================= UI

    def _build_ui(self) -> None:
        central = QWidget()
        root = QHBoxLayout(central)
        root.setContentsMargins(10, 10, 10, 6)
        root.setSpacing(10)
        self.views = ViewsPane()
        for name in ("message_bar", "driver_panel", "output_panel", "driver_view", "output_view",
                     "assignment_label", "add_avatar_button", "gallery"):
            setattr(self, name, getattr(self.views, name))
        root.addWidget(self.views, 1)
        root.addWidget(self._build_controls())
        self.setCentralWidget(central)
        self._build_status_bar()
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        self.addAction(quit_action)

    def _build_controls(self) -> QScrollArea:
        """The right side: one group box per job, scrollable on small screens. The widgets the
        window wires up are also its attributes (tests and the screenshot tool use them)."""
        s = self.settings
        panel = QWidget()
        col = QVBoxLayout(panel)
        col.setContentsMargins(0, 0, 4, 0)
        col.setSpacing(6)
        self.source_box = SourcePanel(s.mirror)
        self.motion_box = MotionPanel({o.name: getattr(s, o.name) for o in MOTION_OPTIONS})
        self.expression_group = ExpressionPanel(s.mode)
        self.output_box = OutputPanel(s)
        widgets = {self.source_box: ("source_combo", "refresh_button", "open_video_button", "mirror_check"),
                   self.motion_box: ("calibrate_button", "mode_combo", "smoothing_slider", "gain_sliders",
                                     "reset_gains_button"),
                   self.expression_group: ("expression_buttons",),
                   self.output_box: ("size_combo", "fps_combo", "faces_spin", "vcam_switch", "vcam_status",
                                     "record_button", "record_folder_button", "record_status", "overlay_check")}
        for box, names in widgets.items():
            col.addWidget(box)
            for name in names:
                setattr(self, name, getattr(box, name))
        self.renderer_picker = RendererPicker()  # app/gui/renderer_picker.py
        self.renderer_picker.chosen.connect(self.controller.set_renderer)
        col.addWidget(self.renderer_picker)
        col.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        extent = scroll.style().pixelMetric(scroll.style().PixelMetric.PM_ScrollBarExtent)
        scroll.setFixedWidth(max(330, panel.minimumSizeHint().width()) + extent + 4)
        return scroll

    def _build_status_bar(self) -> None:
        """fps and latency on the left, face and outputs on the right."""
        bar = self.statusBar()
        self.stats_label = QLabel("Starting\u2026")
        self.face_label = QLabel("")
        self.vcam_indicator = QLabel("")
        self.rec_indicator = QLabel("")
        # Permanent widgets stay visible while transient messages show on the left.
        for w in (self.stats_label, self.face_label, self.vcam_indicator, self.rec_indicator):
            bar.addPermanentWidget(w)

    def _connect(self) -> None:
        c = self.controller
        c.frameReady.connect(self._show_frame)
        c.avatarChanged.connect(self._avatar_changed)
        c.avatarFailed.connect(self._avatar_failed)
        c.avatarAdded.connect(self._avatar_added)
        c.avatarRejected.connect(self._avatar_rejected)
        c.camerasListed.connect(self._cameras_listed)
        c.sourceChanged.connect(self._source_changed)
        c.sourceFailed.connect(self._source_failed)
        c.sessionFailed.connect(self._session_failed)
        c.virtualCameraChanged.connect(self._vcam_changed)
        c.recordingChanged.connect(self._recording_changed)
        c.sinkFailed.connect(lambda m: self.show_message(m, "warning", "sink"))
        c.facesChanged.connect(self._faces_changed)
        c.assignmentChanged.connect(self._assignment_message)
        self.message_bar.dismissed.connect(self._message_dismissed)

        self.driver_view.resized.connect(lambda w, h: c.display_boxes.__setitem__("driver", (w, h)))
        self.output_view.resized.connect(lambda w, h: c.display_boxes.__setitem__("output", (w, h)))
        self.output_view.clicked.connect(self._output_clicked)
        self.gallery.currentItemChanged.connect(self._gallery_picked)
        self.gallery.filesDropped.connect(self.add_avatar_files)
        self.gallery.customContextMenuRequested.connect(self._gallery_menu)
        self.add_avatar_button.clicked.connect(self._add_avatar_dialog)

        self.source_combo.activated.connect(self._source_picked)
        self.refresh_button.clicked.connect(c.refresh_cameras)
        self.open_video_button.clicked.connect(self.open_video_dialog)
        self.mirror_check.toggled.connect(self._settings_changed)
        self.calibrate_button.clicked.connect(self.calibrate)
        self.motion_box.changed.connect(self._settings_changed)
        for name, button in self.expression_buttons.items():
            button.pressed.connect(lambda n=name: c.mixer.press(n))
            button.released.connect(lambda n=name: c.mixer.release(n))
        self.size_combo.currentIndexChanged.connect(self._settings_changed)
        self.fps_combo.currentIndexChanged.connect(self._settings_changed)
        self.vcam_switch.toggled.connect(self._vcam_toggled)
        self.record_button.toggled.connect(self._record_toggled)
        self.record_folder_button.clicked.connect(self._record_folder_dialog)
        self.overlay_check.toggled.connect(self._settings_changed)
        self.faces_spin.valueChanged.connect(self._faces_picked)

    def _restore_geometry(self) -> None:
        if not (self.settings.geometry and self.restoreGeometry(self.settings.geometry)):
            self.resize(1320, 820)

    # ================================================================= messages

    def show_message(self, text: str, kind: str = "error", topic: str = "", actions=()) -> None:
        self.last_message = text
        self.message_bar.show_message(text, kind, topic, list(actions))
        self.statusBar().showMessage(text.split(". ")[0], 6000)

    def _flash(self, text: str, ms: int = 3000) -> None:
        self.statusBar().showMessage(text, ms)

    # ================================================================= frames and stats

    def _show_frame(self, view: FrameView) -> None:
        self.driver_view.show_image(view.driver)
        self.output_view.show_image(view.output)
        if view.people is not None:
            self._show_assignment(view.people)
        self.controller.frame_shown()

    def _update_stats(self) -> None:
        c = self.controller
        c.poll()
        session = c.session
        live = session is not None and session.running
        # Recording needs frames; stopping a recording must stay possible.
        self.record_button.setEnabled(live or self.record_button.isChecked())
        if not live:
            self.stats_label.setText("No source" if c.puppeteer is not None else "Starting\u2026")
            self.face_label.setText("")
            return
        if c.frames_out == 0:
            return
        t = c.last_times
        stages = " \u00b7 ".join(f"{k} {t[k]:.0f} ms" for k in ("track", "retarget", "render", "total") if k in t)
        self.stats_label.setText(f"{c.output_fps:5.1f} fps   {stages}")
        if c.active_faces > 1:
            n, found = c.active_faces, min(c.faces_found, c.active_faces)
            self.face_label.setText(f"\u25cf {found} of {n} faces tracked" if found else "\u25cb No face")
        else:
            self.face_label.setText("\u25cf Face tracked" if c.face_found else "\u25cb No face")
        self.face_label.setStyleSheet("color: #6fd08c;" if c.face_found else "color: #e0b050;")
        if self._recording_started is not None:
            elapsed = int(time.monotonic() - self._recording_started)
            self.rec_indicator.setText(f"\u25cf REC {elapsed // 60:d}:{elapsed % 60:02d}")

    # ================================================================= controls

    def calibrate(self) -> None:
        self.controller.calibrate()
        self._flash("Calibrated: your face as it is now is the neutral pose")

    def current_settings(self) -> AppSettings:
        """The settings as the controls show them now."""
        s = replace(self.settings)
        for name, value in self.motion_box.values().items():
            setattr(s, name, value)
        s.mirror = self.mirror_check.isChecked()
        s.output_size = self.size_combo.currentData()
        s.fps = int(self.fps_combo.currentData())
        s.overlay = self.overlay_check.isChecked()
        s.faces = self.faces_spin.value()
        s.virtual_camera = self.vcam_switch.isChecked()
        return s

    def _settings_changed(self, *_: object) -> None:
        self.settings = self.current_settings()
        self.expression_group.set_mode(self.settings.mode)
        c = self.controller
        c.overlay = self.settings.overlay
        c.update_settings(self.settings.pipeline_settings(c.settings))
        c.set_fps(self.settings.fps)
        self._save_soon()

    # ================================================================= several faces

    def _faces_picked(self, n: int) -> None:
        self.settings.faces = n
        self.controller.set_faces(n)
        self._flash(f"Loading {n} faces\u2026" if n > 1 else "Back to one face\u2026", 5000)
        self._save_soon()

    def _faces_changed(self, n: int) -> None:
        """The controller now animates n faces (or kept what ran after a failure)."""
        c = self.controller
        if self.faces_spin.value() != c.faces:
            self.faces_spin.blockSignals(True)
            self.faces_spin.setValue(c.faces)
            self.faces_spin.blockSignals(False)
            self.settings.faces = c.faces
            self._save_soon()
        several = c.active_faces > 1
        # A cast is sized for its group (1024x576 for a group portrait, 512x512 a tile).
        self.size_combo.setEnabled(not several)
        self.size_combo.setToolTip("With several faces the output is sized for the group" if several else "")
        w, h = c.output_size
        self.output_panel.title.setText(f"AVATAR OUTPUT \u00b7 {n} faces \u00b7 {w}\u00d7{h}" if several
                                        else "AVATAR OUTPUT")
        self.assignment_label.setVisible(several)
        if several:
            self._show_assignment(c.last_people or [None] * n)
            if c.faces > n:
                self._flash(f"This portrait has {n} faces to animate", 5000)

    def _show_assignment(self, people: list[int | None]) -> None:
        parts = [f"face {k + 1}: {'person ' + str(p) if p is not None else 'nobody'}" for k, p in enumerate(people)]
        text = " \u00b7 ".join(parts) + "   (click a face to swap it with the next)"
        if text != self.assignment_label.text():
            self.assignment_label.setText(text)

    def _assignment_message(self, text: str) -> None:
        self._flash(text[0].upper() + text[1:], 4000)

    def _output_clicked(self, u: float, v: float) -> None:
        c = self.controller
        n = c.active_faces
        if n < 2:
            return
        k = c.face_at(u, v)
        if k is None:
            self._flash("Click on an avatar face to give it the next face's person")
            return
        c.swap_faces(k, (k + 1) % n)

    # ================================================================= outputs

    def _vcam_toggled(self, on: bool) -> None:
        set_status(self.vcam_status, "Opening the virtual camera\u2026" if on else "Off", "statusOff")
        self.controller.set_virtual_camera(on)
        self.settings.virtual_camera = on
        self._save_soon()

    def _vcam_changed(self, on: bool, text: str) -> None:
        c = self.controller
        self.vcam_indicator.setText(self.output_box.show_vcam(on, text, c.output_size, c.fps))

    def record_dir(self) -> Path:
        return Path(self.settings.record_dir) if self.settings.record_dir else default_record_dir()

    def _record_toggled(self, on: bool) -> None:
        if on:
            name = datetime.now().strftime("puppetcam-%Y%m%d-%H%M%S.mp4")
            self.controller.start_recording(self.record_dir() / name)
            self.record_status.setText("Starting\u2026")
        else:
            self.controller.stop_recording()

    def _recording_changed(self, on: bool, path: str) -> None:
        self.output_box.show_recording(on, path)
        self._recording_started = time.monotonic() if on else None
        if not on:
            self.rec_indicator.setText("")

    def _record_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save recordings in", str(self.record_dir()))
        if folder:
            self.settings.record_dir = folder
            self.record_status.setText(f"Recordings go to {folder}")
            self._save_soon()

    # ================================================================= keys

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind not in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            return False
        if not isinstance(obj, QWidget) or obj.window() is not self:
            return False
        if event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
                                | Qt.KeyboardModifier.MetaModifier):
            return False
        if isinstance(QApplication.focusWidget(), (QLineEdit, QAbstractSpinBox)):
            return False
        key = event.key()
        press = kind == QEvent.Type.KeyPress
        if key in EXPRESSION_KEYS:
            if not event.isAutoRepeat():
                name = EXPRESSION_KEYS[key]
                (self.controller.mixer.press if press else self.controller.mixer.release)(name)
                self.expression_buttons[name].setDown(press)
            return True
        if Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            if press and not event.isAutoRepeat():
                self.switch_to_row(key - Qt.Key.Key_1)
            return True
        if key == Qt.Key.Key_C:
            if press and not event.isAutoRepeat():
                self.calibrate()
            return True
        return False

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.ActivationChange and not self.isActiveWindow():
            # A key released while another window had focus never reaches us.
            self.controller.mixer.release_all()
            for button in self.expression_buttons.values():
                button.setDown(False)
        super().changeEvent(event)

    # ================================================================= lifetime

    def _save_soon(self) -> None:
        self._save_timer.start()

    def save_settings(self) -> None:
        s = self.current_settings()
        s.geometry = bytes(self.saveGeometry().data())
        self.settings = s
        self.store.save(s)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._stats_timer.stop()
        self._save_timer.stop()
        self.save_settings()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        self.controller.shutdown()
        super().closeEvent(event)


def platform_problem() -> str | None:
    """Why no window can be opened here (Qt would abort the process), or None."""
    import os

    if sys.platform.startswith("linux") and not any(
            os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        return "no display is available (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    return None

