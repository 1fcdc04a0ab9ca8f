"""Output paths checked before anything is opened for writing: an output never replaces an input.

`render --driver X.mp4 --out X.mp4` used to overwrite the driver with a short clip and exit 0.
The comparison is by file identity (device and inode), not by name, so a hard link, a symbolic
link or another spelling of the same path (`./a/../X.mp4`) is caught as well.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from app.errors import PuppetCamError

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov")


class OutputPathError(PuppetCamError):
    """The output path would destroy an input, or cannot hold a video."""


@dataclass(frozen=True)
class NamedInput:
    """An input file and the option that named it, for the message (e.g. '--driver')."""

    option: str
    path: Path


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file `path` leads to, following links; None if there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def check_output_path(output: Path, option: str, inputs: Iterable[NamedInput]) -> Path:
    """`output`, or OutputPathError if writing it would replace one of `inputs` or cannot work.

    A dangling symbolic link as the output is refused too: the rename that finishes the file
    would replace the link itself, which is rarely what was meant.
    """
    output = Path(output)
    if output.is_dir():
        raise OutputPathError(f"{option} {output} is a folder.", "Give the path of a .mp4 file to write.")
    out_id = _identity(output)
    for item in inputs:
        same = out_id is not None and out_id == _identity(item.path)
        # A link to an input also counts even when the input's own path is a link to it.
        if same or _resolved(output) == _resolved(item.path):
            raise OutputPathError(
                f"{option} {output} is the same file as {item.option} {item.path}; "
                "writing it would destroy the input.",
                f"Choose another output name, e.g. {_suggest(output)}.",
            )
    if output.suffix.lower() not in VIDEO_SUFFIXES:
        raise OutputPathError(
            f"{option} {output}: the output is an H.264 video, so its name must end in .mp4.",
            f"Choose a name such as {output.with_suffix('.mp4').name}.",
        )
    if output.is_symlink() and out_id is None:
        raise OutputPathError(f"{option} {output} is a link to a file that does not exist.",
                              "Give the path of a real file or folder to write into.")
    return output


def _resolved(path: Path) -> Path:
    try:
        return Path(os.path.realpath(path))
    except OSError:
        return Path(os.path.abspath(path))


def _suggest(output: Path) -> Path:
    suffix = output.suffix if output.suffix.lower() in VIDEO_SUFFIXES else ".mp4"
    return output.with_name(f"{output.stem}_puppetcam{suffix}")
