"""All of LivePortrait's networks in one bundle, built from the release's constructor parameters."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from .appearance import AppearanceFeatureExtractor
from .config import EYE, LIP, STITCHING
from .motion import MotionExtractor
from .spade import SpadeGenerator
from .stitching import RetargetingMlp
from .warping import WarpingNetwork


@dataclass
class LivePortraitNets:
    appearance_feature_extractor: AppearanceFeatureExtractor  # F
    motion_extractor: MotionExtractor  # M
    warping_module: WarpingNetwork  # W
    spade_generator: SpadeGenerator  # G
    stitching: RetargetingMlp  # S
    lip: RetargetingMlp
    eye: RetargetingMlp

    @classmethod
    def build(cls) -> "LivePortraitNets":
        return cls(AppearanceFeatureExtractor(), MotionExtractor(), WarpingNetwork(), SpadeGenerator(),
                   RetargetingMlp(STITCHING), RetargetingMlp(LIP), RetargetingMlp(EYE))

    def modules(self) -> dict[str, torch.nn.Module]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def eval(self) -> "LivePortraitNets":
        for m in self.modules().values():
            m.eval()
        return self

    def to(self, device: str | torch.device) -> "LivePortraitNets":
        for m in self.modules().values():
            m.to(device)
        return self

    @classmethod
    def random(cls) -> "LivePortraitNets":
        """Every network filled with the fixture's numpy recipe (noise; for tests and demos)."""
        from .recipe import fill_with_recipe

        nets = cls.build()
        for name, m in nets.modules().items():
            fill_with_recipe(m, name)
        return nets.eval()
