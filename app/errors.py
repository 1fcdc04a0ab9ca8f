"""User-facing errors: every one names the file or device and says what to do."""

from __future__ import annotations

from engines.errors import PuppetCamError  # noqa: F401  (the base, shared with the engines)


class AvatarError(PuppetCamError):
    """The avatar image cannot be animated (unreadable, not an image, no usable face)."""


class CaptureError(PuppetCamError):
    """A camera or a video file cannot be opened or read."""


class VirtualCameraUnavailable(PuppetCamError):
    """No virtual-camera device: the pipeline goes on with the other sinks."""
