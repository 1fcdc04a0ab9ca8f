"""The "Source" group box: camera or video file, refresh, mirror."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QComboBox, QGridLayout, QGroupBox, QPushButton, QSizePolicy, QWidget

from ..controller import SourceSpec


class SourcePanel(QGroupBox):
    def __init__(self, mirror: bool, parent: QWidget | None = None) -> None:
        super().__init__("Source", parent)
        g = QGridLayout(self)
        self.source_combo = QComboBox()
        self.source_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.refresh_button = QPushButton("\u21bb")
        self.refresh_button.setToolTip("Look for cameras again")
        self.refresh_button.setFixedWidth(34)
        self.open_video_button = QPushButton("Open video file\u2026")
        self.mirror_check = QCheckBox("Mirror (selfie view)")
        self.mirror_check.setChecked(mirror)
        g.addWidget(self.source_combo, 0, 0)
        g.addWidget(self.refresh_button, 0, 1)
        g.addWidget(self.open_video_button, 1, 0, 1, 2)
        g.addWidget(self.mirror_check, 2, 0, 1, 2)

    def list_sources(self, cameras: list[int], video_path: str, current: SourceSpec | None) -> None:
        """The cameras found and the last video, with the source in use selected (no signals)."""
        combo = self.source_combo
        combo.blockSignals(True)
        combo.clear()
        for index in cameras:
            combo.addItem(f"Camera {index}", SourceSpec("camera", camera=index))
        if not cameras:
            combo.addItem("No camera found", None)
        if video_path and Path(video_path).is_file():
            combo.addItem(f"Video: {Path(video_path).name} (loops)", SourceSpec("file", path=video_path))
        for i in range(combo.count()):
            if combo.itemData(i) == current and current is not None:
                combo.setCurrentIndex(i)
        combo.blockSignals(False)
