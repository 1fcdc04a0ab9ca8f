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
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app import ASSETS_DIR, DEFAULT_AVATAR
from app.retarget import RetargetSettings

from .controller import Controller, FrameView, SourceSpec
from .metrics import to_qimage
from .gallery import BUNDLED_DIR, BUNDLED_ROLE, PATH_ROLE, AvatarGallery, display_name, image_files, user_avatar_dir
from .settings_store import FPS_CHOICES, MAX_FACES, OUTPUT_SIZES, AppSettings, SettingsStore
from .renderer_picker import RendererPicker
from .widgets import LabeledSlider, MessageBar, TitledView

DEMO_CLIP = ASSETS_DIR / "demo" / "driver.mp4"  # offered when there is no camera, if bundled
VIDEO_FILTER = "Videos (*.mp4 *.mov *.mkv *.avi *.webm *.m4v);;All files (*)"
IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff)"
EXPRESSION_KEYS = {Qt.Key.Key_Q: "smile", Qt.Key.Key_W: "surprise", Qt.Key.Key_E: "wink"}
EXPRESSION_LABELS = {"smile": "Smile", "surprise": "Surprise", "wink": "Wink"}


def default_record_dir() -> Path:
    movies = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MoviesLocation)
    return Path(movies or Path.home()) / "PuppetCam"


class MainWindow(QMainWindow):
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
        s = self.settings
        central = QWidget()
        root = QHBoxLayout(central)
        root.setContentsMargins(10, 10, 10, 6)
        root.setSpacing(10)

        # Left: message bar, the two views, the gallery.
        left = QVBoxLayout()
        left.setSpacing(8)
        self.message_bar = MessageBar()
        left.addWidget(self.message_bar)
        views = QHBoxLayout()
        views.setSpacing(10)
        self.driver_panel = TitledView("CAMERA", "Starting\u2026")
        self.output_panel = TitledView("AVATAR OUTPUT", "Loading the avatar\u2026")
        self.driver_view = self.driver_panel.view
        self.output_view = self.output_panel.view
        # Several faces: who drives which avatar face; a click on a face reassigns it.
        self.assignment_label = QLabel("")
        self.assignment_label.setObjectName("assignment")
        self.assignment_label.setWordWrap(True)
        self.assignment_label.setToolTip("Click an avatar face in the output to swap its person with the next face's")
        self.assignment_label.hide()
        self.output_panel.layout().addWidget(self.assignment_label)
        views.addWidget(self.driver_panel, 1)
        views.addWidget(self.output_panel, 1)
        left.addLayout(views, 1)

        header = QHBoxLayout()
        title = QLabel("AVATARS")
        title.setObjectName("viewTitle")
        hint = QLabel("press 1\u20139 to switch \u00b7 drop a portrait here to add it")
        hint.setObjectName("hint")
        self.add_avatar_button = QPushButton("Add portrait\u2026")
        header.addWidget(title)
        header.addSpacing(8)
        header.addWidget(hint)
        header.addStretch(1)
        header.addWidget(self.add_avatar_button)
        left.addLayout(header)
        self.gallery = AvatarGallery()
        self.gallery.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        left.addWidget(self.gallery)
        root.addLayout(left, 1)

        # Right: the controls, scrollable on small screens.
        panel = QWidget()
        col = QVBoxLayout(panel)
        col.setContentsMargins(0, 0, 4, 0)
        col.setSpacing(6)

        src = QGroupBox("Source")
        g = QGridLayout(src)
        self.source_combo = QComboBox()
        self.source_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.refresh_button = QPushButton("\u21bb")
        self.refresh_button.setToolTip("Look for cameras again")
        self.refresh_button.setFixedWidth(34)
        self.open_video_button = QPushButton("Open video file\u2026")
        self.mirror_check = QCheckBox("Mirror (selfie view)")
        self.mirror_check.setChecked(s.mirror)
        g.addWidget(self.source_combo, 0, 0)
        g.addWidget(self.refresh_button, 0, 1)
        g.addWidget(self.open_video_button, 1, 0, 1, 2)
        g.addWidget(self.mirror_check, 2, 0, 1, 2)
        col.addWidget(src)

        motion = QGroupBox("Motion")
        v = QVBoxLayout(motion)
        self.calibrate_button = QPushButton("Calibrate  (C)")
        self.calibrate_button.setObjectName("calibrateButton")
        self.calibrate_button.setToolTip("Look straight at the camera with a relaxed face, then press C")
        v.addWidget(self.calibrate_button)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("Relative \u2014 keeps the portrait's face", "relative")
        self.mode_combo.addItem("Absolute \u2014 copies your face shape", "absolute")
        self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(s.mode)))
        form.addRow("Mode", self.mode_combo)
        v.addLayout(form)
        self.smoothing_slider = LabeledSlider("Smoothing", 0.0, 3.0, 0.1, s.smoothing, "{:.1f}",
                                              "Jitter filter: 0 off, 1 tuned default, higher is steadier but laggier")
        v.addWidget(self.smoothing_slider)
        gains = QLabel("Gains")
        gains.setObjectName("hint")
        v.addWidget(gains)
        self.gain_sliders = {
            "head": LabeledSlider("Head", 0.0, 2.0, 0.05, s.head_gain),
            "mouth": LabeledSlider("Mouth", 0.0, 2.0, 0.05, s.mouth_gain),
            "eyes": LabeledSlider("Eyes", 0.0, 2.0, 0.05, s.eyes_gain),
            "brows": LabeledSlider("Brows", 0.0, 2.0, 0.05, s.brows_gain),
        }
        for slider in self.gain_sliders.values():
            v.addWidget(slider)
        self.reset_gains_button = QPushButton("Reset gains")
        v.addWidget(self.reset_gains_button, 0, Qt.AlignmentFlag.AlignRight)
        col.addWidget(motion)

        expr = self.expression_group = QGroupBox("Expressions (hold)")
        h = QHBoxLayout(expr)
        self.expression_buttons: dict[str, QPushButton] = {}
        for key, name in EXPRESSION_KEYS.items():
            button = QPushButton(f"{EXPRESSION_LABELS[name]}  ({QKeySequence(key).toString()})")
            button.setToolTip(f"Hold {QKeySequence(key).toString()} (or this button) to blend a "
                              f"{name} on top of your face")
            self.expression_buttons[name] = button
            h.addWidget(button)
        col.addWidget(expr)
        self._update_expression_group(s.mode)

        out = QGroupBox("Output")
        og = QGridLayout(out)
        self.size_combo = QComboBox()
        for label in OUTPUT_SIZES:
            self.size_combo.addItem(label.replace("x", " \u00d7 "), label)
        self.size_combo.setCurrentIndex(max(0, self.size_combo.findData(s.output_size)))
        self.fps_combo = QComboBox()
        for fps in FPS_CHOICES:
            self.fps_combo.addItem(f"{fps} fps", fps)
        self.fps_combo.setCurrentIndex(max(0, self.fps_combo.findData(s.fps)))
        og.addWidget(QLabel("Size"), 0, 0)
        og.addWidget(self.size_combo, 0, 1)
        og.addWidget(self.fps_combo, 0, 2)
        self.faces_spin = QSpinBox()
        self.faces_spin.setRange(1, MAX_FACES)
        self.faces_spin.setValue(s.faces)
        self.faces_spin.setToolTip("Animate several faces at once, one person in the camera each: the faces of a "
                                   "group portrait, or copies of a one-face portrait side by side")
        faces_hint = QLabel("people at once")
        faces_hint.setObjectName("hint")
        og.addWidget(QLabel("Faces"), 1, 0)
        og.addWidget(self.faces_spin, 1, 1)
        og.addWidget(faces_hint, 1, 2)
        self.vcam_switch = QCheckBox("Virtual camera")
        self.vcam_switch.setToolTip("Send the avatar to a virtual webcam for Zoom, Meet, Teams, OBS\u2026")
        og.addWidget(self.vcam_switch, 2, 0, 1, 3)
        self.vcam_status = _status_label("Off")
        og.addWidget(self.vcam_status, 3, 0, 1, 3)
        self.record_button = QPushButton("\u25cf  Record")
        self.record_button.setObjectName("recordButton")
        self.record_button.setCheckable(True)
        self.record_folder_button = QPushButton("Folder\u2026")
        og.addWidget(self.record_button, 4, 0, 1, 2)
        og.addWidget(self.record_folder_button, 4, 2)
        self.record_status = _status_label("")
        og.addWidget(self.record_status, 5, 0, 1, 3)
        self.overlay_check = QCheckBox("Show landmarks")
        self.overlay_check.setChecked(s.overlay)
        og.addWidget(self.overlay_check, 6, 0, 1, 3)
        col.addWidget(out)
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
        root.addWidget(scroll)
        self.setCentralWidget(central)

        # Status bar: fps and latency on the left, face and outputs on the right.
        bar = self.statusBar()
        self.stats_label = QLabel("Starting\u2026")
        self.face_label = QLabel("")
        self.vcam_indicator = QLabel("")
        self.rec_indicator = QLabel("")
        # Permanent widgets stay visible while transient messages show on the left.
        for w in (self.stats_label, self.face_label, self.vcam_indicator, self.rec_indicator):
            bar.addPermanentWidget(w)

        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        self.addAction(quit_action)

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
        self.mode_combo.currentIndexChanged.connect(self._settings_changed)
        self.smoothing_slider.valueChanged.connect(self._settings_changed)
        for slider in self.gain_sliders.values():
            slider.valueChanged.connect(self._settings_changed)
        self.reset_gains_button.clicked.connect(self._reset_gains)
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

    # ================================================================= avatars

    def _gallery_picked(self, current, previous) -> None:
        if current is None:
            return
        path = current.data(PATH_ROLE)
        self.controller.select_avatar(path)
        self._flash(f"Loading {display_name(Path(path))}\u2026")

    def switch_to_row(self, row: int) -> None:
        if 0 <= row < self.gallery.count():
            self.gallery.setCurrentRow(row)

    def _select_gallery_path(self, path: str) -> None:
        item = self.gallery.item_for(path) if path else None
        self.gallery.blockSignals(True)
        if item is not None:
            self.gallery.setCurrentItem(item)
            self.gallery.scrollToItem(item)
        self.gallery.blockSignals(False)

    def _message_dismissed(self, topic: str) -> None:
        # Closing another message brings the standing "no camera" notice back.
        if topic != "source" and self.controller.source_spec is None and self._source_chosen and not self.cameras:
            self._no_camera()

    def _avatar_changed(self, name: str, path: str) -> None:
        session = self.controller.session
        still = self.controller.still_image()
        if still is not None and (session is None or not session.running):
            # Nothing drives it yet: show the portrait at rest rather than a blank view.
            box = self.controller.display_boxes["output"]
            self.output_view.show_image(to_qimage(still, box, None, (0, 0, 0)))
        self._select_gallery_path(path)
        if path:
            self.settings.avatar = path
            self._save_soon()
        self.message_bar.dismiss("avatar")
        self._flash(f"Avatar: {display_name(Path(path)) if path else name}")

    def _avatar_failed(self, path: str, message: str) -> None:
        self.show_message(message, "error", "avatar")
        current = self.controller.avatar_path
        self._select_gallery_path(str(current) if current else "")

    def _add_avatar_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add portraits", str(Path.home()), IMAGE_FILTER)
        if files:
            self.add_avatar_files(files)

    def add_avatar_files(self, files: list[str]) -> None:
        for f in files:
            self.controller.add_avatar(f, self.avatars_dir)
        self._flash(f"Checking {', '.join(Path(f).name for f in files)} for a face\u2026", 5000)

    def _avatar_added(self, path: str) -> None:
        item = self.gallery.item_for(path) or self.gallery.add_path(Path(path), bundled=False)
        self.message_bar.dismiss("add")
        self.gallery.setCurrentItem(item)  # switches to it (already loaded: instant)
        self._flash(f"Added {display_name(Path(path))} to your avatars")

    def _avatar_rejected(self, path: str, message: str) -> None:
        self.show_message(f"{Path(path).name} was not added. {message}", "error", "add",
                          [("Choose another\u2026", self._add_avatar_dialog)])

    def _gallery_menu(self, pos) -> None:
        item = self.gallery.itemAt(pos)
        if item is None or item.data(BUNDLED_ROLE):
            return
        menu = QMenu(self)
        remove = menu.addAction("Remove from my avatars")
        if menu.exec(self.gallery.viewport().mapToGlobal(pos)) is remove:
            self.remove_user_avatar(item.data(PATH_ROLE))

    def remove_user_avatar(self, path: str) -> None:
        p = Path(path)
        if self.avatars_dir.resolve() not in p.resolve().parents:
            return
        current = self.controller.avatar_path
        if current is not None and Path(current).resolve() == p.resolve():
            self.switch_to_row(0)
        self.gallery.remove_path(path)
        try:
            p.unlink()
        except OSError as exc:
            self.show_message(f"Could not delete {p} ({exc.strerror}).", "warning")

    # Drops anywhere on the window add portraits too.
    def dragEnterEvent(self, event) -> None:
        self.gallery.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        self.gallery.dropEvent(event)

    # ================================================================= sources

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
        combo = self.source_combo
        combo.blockSignals(True)
        combo.clear()
        for index in self.cameras:
            combo.addItem(f"Camera {index}", SourceSpec("camera", camera=index))
        if not self.cameras:
            combo.addItem("No camera found", None)
        video = self.settings.video_path
        if video and Path(video).is_file():
            combo.addItem(f"Video: {Path(video).name} (loops)", SourceSpec("file", path=video))
        spec = self.controller.source_spec
        for i in range(combo.count()):
            if combo.itemData(i) == spec and spec is not None:
                combo.setCurrentIndex(i)
        combo.blockSignals(False)

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

    # ================================================================= controls

    def calibrate(self) -> None:
        self.controller.calibrate()
        self._flash("Calibrated: your face as it is now is the neutral pose")

    def _reset_gains(self) -> None:
        defaults = RetargetSettings()
        for name, slider in self.gain_sliders.items():
            slider.set_value(getattr(defaults, f"{name}_gain"))
        self._settings_changed()

    def current_settings(self) -> AppSettings:
        """The settings as the controls show them now."""
        s = replace(self.settings)
        s.mode = self.mode_combo.currentData()
        s.smoothing = self.smoothing_slider.value()
        for name, slider in self.gain_sliders.items():
            setattr(s, f"{name}_gain", slider.value())
        s.mirror = self.mirror_check.isChecked()
        s.output_size = self.size_combo.currentData()
        s.fps = int(self.fps_combo.currentData())
        s.overlay = self.overlay_check.isChecked()
        s.faces = self.faces_spin.value()
        s.virtual_camera = self.vcam_switch.isChecked()
        return s

    def _update_expression_group(self, mode: str) -> None:
        # Absolute mode copies the driver's landmarks as they are: there is no motion to add to.
        relative = mode == "relative"
        self.expression_group.setEnabled(relative)
        self.expression_group.setTitle("Expressions (hold)" if relative else "Expressions (relative mode only)")

    def _settings_changed(self, *_: object) -> None:
        self.settings = self.current_settings()
        self._update_expression_group(self.settings.mode)
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
        self.vcam_status.setText("Opening the virtual camera\u2026" if on else "Off")
        self.vcam_status.setObjectName("statusOff")
        self._restyle(self.vcam_status)
        self.controller.set_virtual_camera(on)
        self.settings.virtual_camera = on
        self._save_soon()

    def _vcam_changed(self, on: bool, text: str) -> None:
        self.vcam_switch.blockSignals(True)
        self.vcam_switch.setChecked(on)
        self.vcam_switch.blockSignals(False)
        self.vcam_status.setToolTip("")
        if on:
            w, h = self.controller.output_size
            self.vcam_status.setText(f"On: {text} ({w}\u00d7{h}, {self.controller.fps:g} fps)")
            self.vcam_status.setObjectName("statusOn")
            self.vcam_indicator.setText(f"Virtual camera on: {text}")
        elif text:
            fix, _, detail = text.partition("\n\n")
            self.vcam_status.setText(fix)
            self.vcam_status.setToolTip(detail or fix)
            self.vcam_status.setObjectName("statusError")
            self.vcam_indicator.setText("Virtual camera: no device")
        else:
            self.vcam_status.setText("Off")
            self.vcam_status.setObjectName("statusOff")
            self.vcam_indicator.setText("")
        self._restyle(self.vcam_status)

    def _restyle(self, widget: QWidget) -> None:
        widget.style().unpolish(widget)
        widget.style().polish(widget)

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
        self.record_button.blockSignals(True)
        self.record_button.setChecked(on)
        self.record_button.blockSignals(False)
        self.record_button.setText("\u25a0  Stop recording" if on else "\u25cf  Record")
        if on:
            self._recording_started = time.monotonic()
            self.record_status.setText(f"Recording to {path}")
            self.record_status.setObjectName("statusError")
        else:
            self._recording_started = None
            self.rec_indicator.setText("")
            self.record_status.setText(f"Saved {path}" if path else "")
            self.record_status.setObjectName("statusOff")
        self._restyle(self.record_status)

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


def _status_label(text: str) -> QLabel:
    """A wrapping status line whose text can be selected and copied (error messages name paths)."""
    label = QLabel(text)
    label.setObjectName("statusOff")
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label
