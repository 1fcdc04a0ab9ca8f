"""The avatar gallery: bundled portraits plus the user's own, as thumbnails; takes dropped files."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, QStandardPaths, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QImageReader, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem

from app import ASSETS_DIR
from app.avatar import IMAGE_SUFFIXES

BUNDLED_DIR = ASSETS_DIR / "avatars"
THUMB = 88
PATH_ROLE = Qt.ItemDataRole.UserRole
BUNDLED_ROLE = Qt.ItemDataRole.UserRole + 1


def user_avatar_dir() -> Path:
    """Where the user's own avatars are copied: <AppDataLocation>/avatars."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base) / "avatars"


def image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                  key=lambda p: p.name.lower())


def display_name(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").strip().title() or path.name


def thumbnail(path: Path, size: int = THUMB) -> QIcon:
    """A square, centre-cropped thumbnail, decoded at reduced size (fast for big JPEGs)."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    src = reader.size()
    if src.isValid() and src.width() > 0 and src.height() > 0:
        s = size / min(src.width(), src.height())
        reader.setScaledSize(QSize(max(1, round(src.width() * s)), max(1, round(src.height() * s))))
    image: QImage = reader.read()
    pix = QPixmap(size, size)
    pix.fill(QColor(40, 40, 46))
    if not image.isNull():
        image = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                             Qt.TransformationMode.SmoothTransformation)
        x = (image.width() - size) // 2
        # Portraits: keep the top part (where the face usually is) rather than the centre.
        y = max(0, min((image.height() - size) // 4, image.height() - size))
        painter = QPainter(pix)
        painter.drawImage(0, 0, image, x, y, size, size)
        painter.end()
    return QIcon(pix)


def _local_images(mime) -> list[str]:
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls()
            if u.isLocalFile() and Path(u.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES]


class AvatarGallery(QListWidget):
    """Icon-mode list of avatars; emits `filesDropped` for image files dropped on it."""

    filesDropped = Signal(list)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setGridSize(QSize(THUMB + 44, THUMB + 34))
        self.setSpacing(4)
        self.setUniformItemSizes(True)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setFixedHeight(THUMB + 56)

    def populate(self, bundled: list[Path], own: list[Path]) -> None:
        self.clear()
        for path in bundled:
            self.add_path(path, bundled=True)
        for path in own:
            self.add_path(path, bundled=False)

    def add_path(self, path: Path, bundled: bool = False) -> QListWidgetItem:
        item = QListWidgetItem(thumbnail(path), display_name(path))
        item.setData(PATH_ROLE, str(path))
        item.setData(BUNDLED_ROLE, bundled)
        item.setSizeHint(self.gridSize())
        self.addItem(item)
        self._renumber()
        return item

    def remove_path(self, path: str) -> None:
        item = self.item_for(path)
        if item is not None:
            self.takeItem(self.row(item))
            self._renumber()

    def _renumber(self) -> None:
        for row in range(self.count()):
            item = self.item(row)
            name = display_name(Path(item.data(PATH_ROLE)))
            origin = "bundled" if item.data(BUNDLED_ROLE) else "yours"
            if row < 9:
                item.setText(f"{row + 1}  {name}")
                item.setToolTip(f"{name} ({origin}) - press {row + 1} to switch")
            else:
                item.setText(name)
                item.setToolTip(f"{name} ({origin})")

    def paths(self) -> list[str]:
        return [self.item(r).data(PATH_ROLE) for r in range(self.count())]

    def item_for(self, path: str | Path) -> QListWidgetItem | None:
        target = str(Path(path).resolve())
        for r in range(self.count()):
            item = self.item(r)
            if str(Path(item.data(PATH_ROLE)).resolve()) == target:
                return item
        return None

    # Drops from the file manager ------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:
        if _local_images(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if _local_images(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        files = _local_images(event.mimeData())
        if files:
            event.acceptProposedAction()
            self.filesDropped.emit(files)
        else:
            event.ignore()
