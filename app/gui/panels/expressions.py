"""The "Expressions" group box: hold a button (or its key) to blend an expression in."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QPushButton, QWidget

EXPRESSION_KEYS = {Qt.Key.Key_Q: "smile", Qt.Key.Key_W: "surprise", Qt.Key.Key_E: "wink"}
EXPRESSION_LABELS = {"smile": "Smile", "surprise": "Surprise", "wink": "Wink"}


class ExpressionPanel(QGroupBox):
    def __init__(self, mode: str, parent: QWidget | None = None) -> None:
        super().__init__("Expressions (hold)", parent)
        h = QHBoxLayout(self)
        self.expression_buttons: dict[str, QPushButton] = {}
        for key, name in EXPRESSION_KEYS.items():
            button = QPushButton(f"{EXPRESSION_LABELS[name]}  ({QKeySequence(key).toString()})")
            button.setToolTip(f"Hold {QKeySequence(key).toString()} (or this button) to blend a "
                              f"{name} on top of your face")
            self.expression_buttons[name] = button
            h.addWidget(button)
        self.set_mode(mode)

    def set_mode(self, mode: str) -> None:
        # Absolute mode copies the driver's landmarks as they are: there is no motion to add to.
        relative = mode == "relative"
        self.setEnabled(relative)
        self.setTitle("Expressions (hold)" if relative else "Expressions (relative mode only)")
