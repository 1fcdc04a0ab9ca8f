"""The renderer picker: weight-free or LivePortrait, and whether the chosen folder holds
LivePortrait's checkpoints (checked by file name, so it answers at once)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QGroupBox, QLabel, QPushButton, QVBoxLayout, QWidget

from app.renderers import LIVEPORTRAIT, WEIGHTFREE, RendererChoice, liveportrait_weights_status

_LABELS = {WEIGHTFREE: "Weight-free (built in)", LIVEPORTRAIT: "LivePortrait (your checkpoints)"}


class RendererPicker(QGroupBox):
    """Emits `chosen(RendererChoice)` when a usable renderer is picked: weight-free always,
    LivePortrait only once its folder holds every checkpoint file."""

    chosen = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Renderer", parent)
        self.folder: Path | None = None
        self.combo = QComboBox()
        for name, label in _LABELS.items():
            self.combo.addItem(label, name)
        self.folder_button = QPushButton("Weights folder…")
        self.status = QLabel()
        self.status.setWordWrap(True)
        v = QVBoxLayout(self)
        for w in (self.combo, self.folder_button, self.status):
            v.addWidget(w)
        self.combo.currentIndexChanged.connect(lambda _: self._changed())
        self.folder_button.clicked.connect(self._browse)
        self._changed(emit=False)

    @property
    def name(self) -> str:
        return str(self.combo.currentData())

    def set_renderer(self, name: str) -> None:
        self.combo.setCurrentIndex(max(self.combo.findData(name), 0))

    def set_folder(self, folder: Path | str | None) -> None:
        self.folder = Path(folder) if folder else None
        self._changed()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "LivePortrait weights folder (pretrained_weights)")
        if folder:
            self.set_folder(folder)

    def _changed(self, emit: bool = True) -> None:
        learned = self.name == LIVEPORTRAIT
        self.folder_button.setVisible(learned)
        if not learned:
            self.status.setText("Warps the portrait itself: no weights needed.")
            if emit:
                self.chosen.emit(RendererChoice(WEIGHTFREE))
            return
        status = liveportrait_weights_status(self.folder)
        hint = "" if status.found else " Get them from LivePortrait's release (huggingface.co/KwaiVGI/LivePortrait)."
        self.status.setText(status.describe() + hint)
        if status.found and emit:
            self.chosen.emit(RendererChoice(LIVEPORTRAIT, self.folder))
