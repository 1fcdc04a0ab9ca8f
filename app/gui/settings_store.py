"""The window's settings, persisted with QSettings (organization "PuppetCam") between runs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from PySide6.QtCore import QByteArray, QSettings

from app import DEFAULT_AVATAR
from app.avatar import Framing
from app.options import MOTION_OPTIONS, OPTIONS, animator_settings
from app.pipeline import PipelineSettings

ORGANIZATION = "PuppetCam"
APPLICATION = "PuppetCam"

OUTPUT_SIZES: dict[str, tuple[int, int]] = {"512x512": (512, 512), "720x720": (720, 720), "1280x720": (1280, 720)}
FPS_CHOICES = (15, 24, 25, 30, 60)
MODES = OPTIONS["mode"].choices
MAX_FACES = 4  # the "Faces" control (the command line goes further)


@dataclass
class AppSettings:
    avatar: str = str(DEFAULT_AVATAR)
    source_kind: str = "camera"  # "camera" or "file"
    camera_index: int = 0
    video_path: str = ""
    # The motion options: defaults and ranges from the options table (app/options.py).
    mode: str = str(OPTIONS["mode"].default)
    smoothing: float = float(OPTIONS["smoothing"].default)
    head_gain: float = float(OPTIONS["head_gain"].default)
    mouth_gain: float = float(OPTIONS["mouth_gain"].default)
    eyes_gain: float = float(OPTIONS["eyes_gain"].default)
    brows_gain: float = float(OPTIONS["brows_gain"].default)
    gaze_gain: float = float(OPTIONS["gaze_gain"].default)
    mirror: bool = False
    output_size: str = "512x512"
    fps: int = 30
    overlay: bool = False
    faces: int = 1  # avatar faces animated at once (several people in the camera)
    virtual_camera: bool = False
    record_dir: str = ""
    geometry: bytes = field(default=b"", repr=False)

    def normalized(self) -> "AppSettings":
        """Values a hand-edited or old settings file may have got wrong, put back in range."""
        s = replace(self)
        if s.source_kind not in ("camera", "file"):
            s.source_kind = "camera"
        if s.output_size not in OUTPUT_SIZES:
            s.output_size = "512x512"
        if s.fps not in FPS_CHOICES:
            s.fps = 30
        for option in MOTION_OPTIONS:
            setattr(s, option.name, option.clamp(getattr(s, option.name)))
        s.camera_index = max(0, s.camera_index)
        s.faces = min(max(s.faces, 1), MAX_FACES)
        return s

    def pipeline_settings(self, base: PipelineSettings = PipelineSettings()) -> PipelineSettings:
        w, h = OUTPUT_SIZES.get(self.output_size, (512, 512))
        return replace(base, framing=Framing(w, h, "fill"), mirror_input=self.mirror,
                       animator=animator_settings(base.animator, asdict(self)))


def _convert(value: object, like: object) -> object:
    """QSettings' INI backend hands everything back as strings: convert to the field's type."""
    if isinstance(like, bool):
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes", "on")
        return bool(value)
    if isinstance(like, int):
        return int(float(value))  # type: ignore[arg-type]
    if isinstance(like, float):
        return float(value)  # type: ignore[arg-type]
    if isinstance(like, bytes):
        if isinstance(value, QByteArray):
            return bytes(value.data())
        return bytes(value) if isinstance(value, (bytes, bytearray)) else b""
    return str(value)


class SettingsStore:
    """Reads and writes AppSettings; pass a QSettings (e.g. an INI file) to isolate tests."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.qsettings = qsettings or QSettings(ORGANIZATION, APPLICATION)

    def load(self) -> AppSettings:
        defaults = AppSettings()
        values = {}
        for f in fields(AppSettings):
            default = getattr(defaults, f.name)
            raw = self.qsettings.value(f.name, None)
            if raw is None:
                values[f.name] = default
                continue
            try:
                values[f.name] = _convert(raw, default)
            except (TypeError, ValueError):
                values[f.name] = default
        return AppSettings(**values).normalized()

    def save(self, settings: AppSettings) -> None:
        for name, value in asdict(settings).items():
            self.qsettings.setValue(name, QByteArray(value) if isinstance(value, bytes) else value)
        self.qsettings.sync()
