"""LivePortrait's networks (KwaiVGI/LivePortrait, MIT), re-implemented to load its released
checkpoints as they are (strict state_dict match) and to export to plugin-free ONNX/TensorRT.

The user brings the checkpoints; nothing is shipped or downloaded. See checkpoints.py."""

from .checkpoints import CheckpointError, expected_files, load_liveportrait, save_liveportrait
from .networks import LivePortraitNets

__all__ = ["CheckpointError", "LivePortraitNets", "expected_files", "load_liveportrait", "save_liveportrait"]
