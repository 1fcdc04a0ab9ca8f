"""The "Output" group box: size, rate, faces, virtual camera, recording, landmarks."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QGridLayout, QGroupBox, QLabel, QPushButton, QSpinBox, QWidget

from ..settings_store import FPS_CHOICES, MAX_FACES, OUTPUT_SIZES, AppSettings


def status_label(text: str) -> QLabel:
    """A wrapping status line whose text can be selected and copied (error messages name paths)."""
    label = QLabel(text)
    label.setObjectName("statusOff")
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def set_status(label: QLabel, text: str, kind: str, tooltip: str | None = None) -> None:
    """Text and style (statusOn / statusOff / statusError) of a status line."""
    label.setText(text)
    if tooltip is not None:
        label.setToolTip(tooltip)
    label.setObjectName(kind)
    # The style sheet selects on the object name: re-polish to apply the new one.
    label.style().unpolish(label)
    label.style().polish(label)


class OutputPanel(QGroupBox):
    def __init__(self, s: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__("Output", parent)
        og = QGridLayout(self)
        self._format_row(og, s)
        self._faces_row(og, s)
        self.vcam_switch = QCheckBox("Virtual camera")
        self.vcam_switch.setToolTip("Send the avatar to a virtual webcam for Zoom, Meet, Teams, OBS\u2026")
        og.addWidget(self.vcam_switch, 2, 0, 1, 3)
        self.vcam_status = status_label("Off")
        og.addWidget(self.vcam_status, 3, 0, 1, 3)
        self.record_button = QPushButton("\u25cf  Record")
        self.record_button.setObjectName("recordButton")
        self.record_button.setCheckable(True)
        self.record_folder_button = QPushButton("Folder\u2026")
        og.addWidget(self.record_button, 4, 0, 1, 2)
        og.addWidget(self.record_folder_button, 4, 2)
        self.record_status = status_label("")
        og.addWidget(self.record_status, 5, 0, 1, 3)
        self.overlay_check = QCheckBox("Show landmarks")
        self.overlay_check.setChecked(s.overlay)
        og.addWidget(self.overlay_check, 6, 0, 1, 3)

    def _format_row(self, og: QGridLayout, s: AppSettings) -> None:
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

    def _faces_row(self, og: QGridLayout, s: AppSettings) -> None:
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

    def show_vcam(self, on: bool, text: str, size: tuple[int, int], fps: float) -> str:
        """The virtual camera's state; returns the status bar's indicator text."""
        self.vcam_switch.blockSignals(True)
        self.vcam_switch.setChecked(on)
        self.vcam_switch.blockSignals(False)
        if on:
            set_status(self.vcam_status, f"On: {text} ({size[0]}\u00d7{size[1]}, {fps:g} fps)", "statusOn", "")
            return f"Virtual camera on: {text}"
        if text:
            fix, _, detail = text.partition("\n\n")
            set_status(self.vcam_status, fix, "statusError", detail or fix)
            return "Virtual camera: no device"
        set_status(self.vcam_status, "Off", "statusOff", "")
        return ""

    def show_recording(self, on: bool, path: str) -> None:
        self.record_button.blockSignals(True)
        self.record_button.setChecked(on)
        self.record_button.blockSignals(False)
        self.record_button.setText("\u25a0  Stop recording" if on else "\u25cf  Record")
        if on:
            set_status(self.record_status, f"Recording to {path}", "statusError")
        else:
            set_status(self.record_status, f"Saved {path}" if path else "", "statusOff")
