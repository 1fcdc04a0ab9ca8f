"""The main window's avatar gallery: pick, switch by number, add (dialog or drop), remove.
A mixin of MainWindow (app/gui/main_window.py), split off by job; it uses the window's
controller, gallery, settings and message helpers."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMenu

from .gallery import BUNDLED_ROLE, PATH_ROLE, display_name
from .metrics import to_qimage

IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff)"


class AvatarHandling:
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
