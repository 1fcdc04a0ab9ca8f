"""User-facing errors: every one names the file or device and says what to do."""

from __future__ import annotations


class PuppetCamError(Exception):
    """An error shown to the user as it is; `str(err)` is the whole message."""

    def __init__(self, what: str, what_to_do: str) -> None:
        self.what = what
        self.what_to_do = what_to_do
        super().__init__(f"{what} {what_to_do}".strip())


class AvatarError(PuppetCamError):
    """The avatar image cannot be animated (unreadable, not an image, no usable face)."""


class CaptureError(PuppetCamError):
    """A camera or a video file cannot be opened or read."""


class VirtualCameraUnavailable(PuppetCamError):
    """No virtual-camera device: the pipeline goes on with the other sinks."""
