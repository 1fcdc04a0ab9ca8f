"""Small reusable widgets: the video views, the message bar, labelled sliders, the theme."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPalette, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)


class VideoView(QLabel):
    """Shows the newest frame (a QImage already scaled to fit by the render thread)."""

    resized = Signal(int, int)
    clicked = Signal(float, float)  # a left click on the image: where, as fractions of its width and height

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(placeholder, parent)
        self.setObjectName("videoView")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(240, 200)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setWordWrap(True)
        self.frames_shown = 0

    def show_image(self, image: QImage) -> None:
        self.setPixmap(QPixmap.fromImage(image))
        self.frames_shown += 1

    def show_text(self, text: str) -> None:
        self.setPixmap(QPixmap())
        self.setText(text)

    def image_rect(self) -> QRect | None:
        """Where the shown image lies in the widget (None while text is shown)."""
        pm = self.pixmap()
        if pm is None or pm.isNull():
            return None
        return QStyle.alignedRect(self.layoutDirection(), self.alignment(), pm.deviceIndependentSize().toSize(),
                                  self.contentsRect())

    def mousePressEvent(self, event) -> None:
        rect = self.image_rect()
        if event.button() == Qt.MouseButton.LeftButton and rect is not None and rect.width() > 0:
            p = event.position()
            u, v = (p.x() - rect.x()) / rect.width(), (p.y() - rect.y()) / rect.height()
            if 0.0 <= u <= 1.0 and 0.0 <= v <= 1.0:
                self.clicked.emit(u, v)
        super().mousePressEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.resized.emit(self.width(), self.height())


class TitledView(QWidget):
    """A caption above a VideoView."""

    def __init__(self, title: str, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.title = QLabel(title)
        self.title.setObjectName("viewTitle")
        self.view = VideoView(placeholder)
        layout.addWidget(self.title)
        layout.addWidget(self.view, 1)


class MessageBar(QFrame):
    """An inline message above the views: errors stay until dismissed, with optional actions."""

    dismissed = Signal(str)  # the topic of the message the user closed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.label, 1)
        self._actions = QHBoxLayout()
        layout.addLayout(self._actions)
        close = QToolButton()
        close.setText("\u2715")
        close.setToolTip("Dismiss")
        close.setAutoRaise(True)
        close.clicked.connect(self._closed)
        layout.addWidget(close)
        self.kind = ""
        self.topic = ""
        self.hide()

    def show_message(self, text: str, kind: str = "error", topic: str = "",
                     actions: list[tuple[str, Callable[[], None]]] = ()) -> None:
        self.kind, self.topic = kind, topic
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)
        self.label.setText(text)
        while self._actions.count():
            w = self._actions.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        for label, callback in actions:
            button = QPushButton(label)
            button.clicked.connect(callback)
            self._actions.addWidget(button)
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisibleTo(self.parentWidget()) else ""

    def action_labels(self) -> list[str]:
        return [self._actions.itemAt(i).widget().text() for i in range(self._actions.count())
                if self._actions.itemAt(i).widget() is not None]

    def _closed(self) -> None:
        topic = self.topic
        self.dismiss()
        self.dismissed.emit(topic)

    def dismiss(self, topic: str | None = None) -> None:
        """Hide the bar (only if it shows `topic`, when one is given)."""
        if topic is None or topic == self.topic:
            self.hide()
            self.topic = ""


class LabeledSlider(QWidget):
    """A name, a slider over [lo, hi] in `step`s, and the value; `valueChanged(float)`."""

    valueChanged = Signal(float)

    def __init__(self, name: str, lo: float, hi: float, step: float, value: float,
                 fmt: str = "{:.2f}", tooltip: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lo, self.step, self.fmt = lo, step, fmt
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.name = QLabel(name)
        self.name.setMinimumWidth(64)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, round((hi - lo) / step))
        self.slider.setPageStep(max(1, round(0.25 / step)))
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(36)
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.name)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.value_label)
        if tooltip:
            self.setToolTip(tooltip)
        self.slider.valueChanged.connect(self._changed)
        self.set_value(value)

    def value(self) -> float:
        return round(self.lo + self.slider.value() * self.step, 6)

    def set_value(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round((value - self.lo) / self.step))
        self.slider.blockSignals(False)
        self.value_label.setText(self.fmt.format(self.value()))

    def _changed(self, _: int) -> None:
        self.value_label.setText(self.fmt.format(self.value()))
        self.valueChanged.emit(self.value())


STYLE = """
QMainWindow, QWidget { font-size: 10pt; }
#viewTitle { color: #9aa0aa; font-weight: 600; letter-spacing: 0.5px; }
#videoView { background: #111114; border: 1px solid #2c2c33; border-radius: 6px; color: #8a8f99; }
#messageBar { border-radius: 6px; }
#messageBar[kind="error"] { background: #4a2226; border: 1px solid #8c3a42; }
#messageBar[kind="warning"] { background: #4a3d1f; border: 1px solid #8c7233; }
#messageBar[kind="info"] { background: #1f3a4a; border: 1px solid #336a8c; }
QGroupBox { border: 1px solid #33333b; border-radius: 6px; margin-top: 14px; padding: 8px 6px 6px 6px; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; color: #c8ccd4; font-weight: 600; }
QPushButton { padding: 5px 10px; border-radius: 4px; border: 1px solid #45454f; background: #2e2e36; }
QPushButton:hover { background: #3a3a44; }
QPushButton:pressed, QPushButton:checked { background: #2f6fb0; border-color: #3d86d1; }
QPushButton#recordButton:checked { background: #b0302f; border-color: #d13d3d; }
QPushButton#calibrateButton { font-weight: 600; }
#statusOn { color: #6fd08c; }
#statusOff { color: #9aa0aa; }
#statusError { color: #f08a8a; }
QListWidget { background: #16161a; border: 1px solid #2c2c33; border-radius: 6px; }
QListWidget::item { color: #c8ccd4; border-radius: 4px; padding: 2px; }
QListWidget::item:selected { background: #2f6fb0; color: white; }
#hint { color: #8a8f99; }
#assignment { color: #c8ccd4; }
QCheckBox::indicator { width: 14px; height: 14px; border: 1px solid #6a6a78; border-radius: 3px; background: #1c1c21; }
QCheckBox::indicator:hover { border-color: #8a8a98; }
QCheckBox::indicator:checked { background: #2f6fb0; border-color: #5a9be0; }
"""


def apply_theme(app: QApplication) -> None:
    """Fusion with a dark palette: video apps read better on a dark background."""
    app.setStyle("Fusion")
    p = QPalette()
    base, window, text = QColor(24, 24, 28), QColor(32, 32, 38), QColor(220, 222, 228)
    p.setColor(QPalette.ColorRole.Window, window)
    p.setColor(QPalette.ColorRole.WindowText, text)
    p.setColor(QPalette.ColorRole.Base, base)
    p.setColor(QPalette.ColorRole.AlternateBase, window)
    p.setColor(QPalette.ColorRole.ToolTipBase, QColor(50, 50, 58))
    p.setColor(QPalette.ColorRole.ToolTipText, text)
    p.setColor(QPalette.ColorRole.Text, text)
    p.setColor(QPalette.ColorRole.Button, QColor(46, 46, 54))
    p.setColor(QPalette.ColorRole.ButtonText, text)
    p.setColor(QPalette.ColorRole.Highlight, QColor(47, 111, 176))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor(255, 255, 255))
    p.setColor(QPalette.ColorRole.PlaceholderText, QColor(130, 134, 142))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(110, 112, 120))
    app.setPalette(p)
    app.setStyleSheet(STYLE)
