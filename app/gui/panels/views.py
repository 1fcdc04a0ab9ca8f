"""The left side of the window: message bar, driver and output views, the avatar gallery."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..gallery import AvatarGallery
from ..widgets import MessageBar, TitledView


class ViewsPane(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        left = QVBoxLayout(self)
        left.setContentsMargins(0, 0, 0, 0)
        left.setSpacing(8)
        self.message_bar = MessageBar()
        left.addWidget(self.message_bar)
        left.addLayout(self._views(), 1)
        left.addLayout(self._gallery_header())
        self.gallery = AvatarGallery()
        self.gallery.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        left.addWidget(self.gallery)

    def _views(self) -> QHBoxLayout:
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
        return views

    def _gallery_header(self) -> QHBoxLayout:
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
        return header
