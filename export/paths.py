"""Where exported models live: a per-user cache folder, never the git checkout."""

from __future__ import annotations

import os
from pathlib import Path
import sys

CACHE_ENV = "PUPPETCAM_CACHE"


def cache_root() -> Path:
    """PuppetCam's cache folder: $PUPPETCAM_CACHE if set, else the platform's user cache dir.

    Linux ~/.cache/puppetcam (or $XDG_CACHE_HOME/puppetcam), macOS ~/Library/Caches/puppetcam,
    Windows %LOCALAPPDATA%\\puppetcam\\Cache.
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        return base / "puppetcam" / "Cache"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "puppetcam"
    return Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "puppetcam"


def models_dir(out: Path | str | None = None) -> Path:
    """The folder for ONNX files, TensorRT engines, their manifests and the timing cache."""
    return Path(out).expanduser() if out is not None else cache_root() / "models"
