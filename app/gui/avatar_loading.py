"""Loading portraits as casts for the live app: cached (switching back is instant), and the
check-and-copy of a portrait the user adds."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
import shutil
import threading

from app.avatar import Avatar, Framing, load_avatar
from app.cast import Cast, load_cast, single_cast
from app.errors import PuppetCamError

CACHE_SIZE = 16


def _stamp(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


class CastLoader:
    """Casts by (portrait, modification time, faces, framing), least recently used dropped.
    Thread-safe: loads run on a worker thread while the GUI thread may add to the cache."""

    def __init__(self, grid_size: int) -> None:
        self.grid_size = grid_size
        self._cache: OrderedDict[tuple, Cast] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, path: Path, faces: int, framing: Framing | None) -> Cast:
        """A lone portrait is framed to the output size; several faces are sized for their
        group (a one-face portrait repeats in tiles: a row, or 2x2 for four)."""
        path = Path(path)
        key = self._key(path, faces, framing)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        cast = load_cast([path], faces, layout="grid" if faces == 4 else "row", grid_size=self.grid_size,
                         single=framing)
        self._remember(key, cast)
        return cast

    def remember_avatar(self, avatar: Avatar, framing: Framing | None) -> None:
        """A portrait already prepared (an added one) is a cast of one, ready to show."""
        self._remember(self._key(Path(avatar.path), 1, framing), single_cast(avatar))

    def _key(self, path: Path, faces: int, framing: Framing | None) -> tuple:
        return (str(path.resolve()), _stamp(path), faces, framing if faces == 1 else None)

    def _remember(self, key: tuple, cast: Cast) -> None:
        with self._lock:
            self._cache[key] = cast
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)


def add_to_folder(path: Path, user_dir: Path, framing: Framing | None, grid_size: int) -> Avatar:
    """Check that `path` has a face PuppetCam can animate, copy it into `user_dir`, and return
    the copy's avatar. Raises PuppetCamError saying which step failed."""
    avatar = load_avatar(path, framing, grid_size)
    try:
        user_dir.mkdir(parents=True, exist_ok=True)
        target = unique_path(user_dir, path)
        if path.resolve() != target.resolve():
            shutil.copy2(path, target)
    except OSError as exc:
        raise PuppetCamError(f"Could not copy {path.name} into {user_dir} ({exc.strerror}).",
                             "Check that the folder is writable.") from exc
    return replace(avatar, name=target.stem, path=target)


def unique_path(folder: Path, source: Path) -> Path:
    """A free file name in `folder` for a copy of `source` (name-2.jpg, name-3.jpg, ...)."""
    target = folder / source.name
    if source.resolve().parent == folder.resolve():
        return source
    n = 2
    while target.exists():
        target = folder / f"{source.stem}-{n}{source.suffix}"
        n += 1
    return target
