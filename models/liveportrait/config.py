"""Constructor parameters of LivePortrait's networks (src/config/models.yaml of KwaiVGI/LivePortrait)
and the layout of its released checkpoint folder."""

from __future__ import annotations

from dataclasses import dataclass, field

NUM_KP = 21
POSE_BINS = 66
RELEASE_HINT = ("LivePortrait's checkpoints are not shipped with PuppetCam and are never downloaded by it. "
                "Get them from https://huggingface.co/KwaiVGI/LivePortrait (MIT; e.g. `huggingface-cli download "
                "KwaiVGI/LivePortrait --local-dir pretrained_weights`, linked from "
                "https://github.com/KwaiVGI/LivePortrait) and pass that folder as --weights.")


@dataclass(frozen=True)
class AppearanceConfig:
    image_channel: int = 3
    block_expansion: int = 64
    num_down_blocks: int = 2
    max_features: int = 512
    reshape_channel: int = 32
    reshape_depth: int = 16
    num_resblocks: int = 6


@dataclass(frozen=True)
class MotionConfig:
    num_kp: int = NUM_KP
    num_bins: int = POSE_BINS
    in_chans: int = 3
    depths: tuple[int, ...] = (3, 3, 9, 3)  # ConvNeXt-V2-tiny
    dims: tuple[int, ...] = (96, 192, 384, 768)


@dataclass(frozen=True)
class DenseMotionConfig:
    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5
    reshape_depth: int = 16
    compress: int = 4
    kp_variance: float = 0.01


@dataclass(frozen=True)
class WarpingConfig:
    num_kp: int = NUM_KP
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    reshape_channel: int = 32
    estimate_occlusion_map: bool = True
    dense_motion: DenseMotionConfig = field(default_factory=DenseMotionConfig)


@dataclass(frozen=True)
class SpadeConfig:
    upscale: int = 2
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    out_channels: int = 64
    num_middle_blocks: int = 6


@dataclass(frozen=True)
class MlpConfig:
    input_size: int
    hidden_sizes: tuple[int, ...]
    output_size: int


STITCHING = MlpConfig(126, (128, 128, 64), 65)
LIP = MlpConfig(65, (128, 128, 64), 63)
EYE = MlpConfig(66, (256, 256, 128, 128, 64), 63)

# Released layout, relative to the `liveportrait` folder of `pretrained_weights/`.
BASE_FILES = {
    "appearance_feature_extractor": "base_models/appearance_feature_extractor.pth",
    "motion_extractor": "base_models/motion_extractor.pth",
    "warping_module": "base_models/warping_module.pth",
    "spade_generator": "base_models/spade_generator.pth",
}
RETARGETING_FILE = "retargeting_models/stitching_retargeting_module.pth"
# Top-level entry of the retargeting file -> our name for that MLP.
RETARGETING_ENTRIES = {"retarget_shoulder": "stitching", "retarget_mouth": "lip", "retarget_eye": "eye"}
