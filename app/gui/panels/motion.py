"""The "Motion" group box: calibrate, mode, smoothing and the gains, built from the options
table (app/options.py) so that ranges and defaults are the command line's."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel, QPushButton, QVBoxLayout, QWidget

from app.options import GAINS, MODE, SMOOTHING, Option

from ..widgets import LabeledSlider

MODE_LABELS = {"relative": "Relative \u2014 keeps the portrait's face", "absolute": "Absolute \u2014 copies your face shape"}


def _slider(option: Option, value: float) -> LabeledSlider:
    return LabeledSlider(option.label, option.low, option.high, option.step, value, option.fmt, option.tooltip)


class MotionPanel(QGroupBox):
    changed = Signal()  # mode, smoothing or a gain moved

    def __init__(self, values: dict[str, object], parent: QWidget | None = None) -> None:
        super().__init__("Motion", parent)
        v = QVBoxLayout(self)
        self.calibrate_button = QPushButton("Calibrate  (C)")
        self.calibrate_button.setObjectName("calibrateButton")
        self.calibrate_button.setToolTip("Look straight at the camera with a relaxed face, then press C")
        v.addWidget(self.calibrate_button)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        self.mode_combo = QComboBox()
        for mode in MODE.choices:
            self.mode_combo.addItem(MODE_LABELS[mode], mode)
        self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(values["mode"])))
        form.addRow("Mode", self.mode_combo)
        v.addLayout(form)
        self.smoothing_slider = _slider(SMOOTHING, values["smoothing"])
        v.addWidget(self.smoothing_slider)
        gains = QLabel("Gains")
        gains.setObjectName("hint")
        v.addWidget(gains)
        # Keyed "head", "mouth", ...: the option's name without "_gain".
        self.gain_sliders = {o.name.removesuffix("_gain"): _slider(o, values[o.name]) for o in GAINS}
        for slider in self.gain_sliders.values():
            v.addWidget(slider)
            slider.valueChanged.connect(self.changed)
        self.reset_gains_button = QPushButton("Reset gains")
        v.addWidget(self.reset_gains_button, 0, Qt.AlignmentFlag.AlignRight)
        self.mode_combo.currentIndexChanged.connect(self.changed)
        self.smoothing_slider.valueChanged.connect(self.changed)
        self.reset_gains_button.clicked.connect(self.reset_gains)

    def values(self) -> dict[str, object]:
        """Every motion option's value as the controls show it."""
        out: dict[str, object] = {MODE.name: self.mode_combo.currentData(), SMOOTHING.name: self.smoothing_slider.value()}
        out.update({f"{k}_gain": s.value() for k, s in self.gain_sliders.items()})
        return out

    def reset_gains(self) -> None:
        for option in GAINS:
            self.gain_sliders[option.name.removesuffix("_gain")].set_value(option.default)
        self.changed.emit()
