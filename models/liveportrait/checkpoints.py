"""Reading (and, for tests, writing) a LivePortrait checkpoint folder in the released layout.

    pretrained_weights/liveportrait/base_models/{appearance_feature_extractor,motion_extractor,
        warping_module,spade_generator}.pth        each a bare state_dict
    pretrained_weights/liveportrait/retargeting_models/stitching_retargeting_module.pth
        {'retarget_shoulder': sd, 'retarget_mouth': sd, 'retarget_eye': sd}, keys may carry 'module.'

The folder given may be `pretrained_weights`, its `liveportrait` subfolder, or any folder holding
`base_models/` and `retargeting_models/`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .config import BASE_FILES, RELEASE_HINT, RETARGETING_ENTRIES, RETARGETING_FILE
from .networks import LivePortraitNets


class CheckpointError(RuntimeError):
    """A checkpoint folder or file is missing or does not match the networks. The message names
    the file and says where the checkpoints come from."""


def expected_files() -> list[str]:
    return [*BASE_FILES.values(), RETARGETING_FILE]


def resolve_root(weights_dir: Path | str) -> Path:
    """The folder that holds base_models/ and retargeting_models/, or CheckpointError."""
    d = Path(weights_dir).expanduser()
    for root in (d, d / "liveportrait", d / "pretrained_weights" / "liveportrait"):
        if (root / "base_models").is_dir() or (root / RETARGETING_FILE).is_file():
            return root
    return d


def _load_file(path: Path, root: Path) -> dict:
    if not path.is_file():
        missing = [f for f in expected_files() if not (root / f).is_file()]
        raise CheckpointError(
            f"LivePortrait checkpoint file not found: {path}\n"
            f"Expected under {root}: " + ", ".join(expected_files()) + "\n"
            "Missing: " + ", ".join(missing) + "\n" + RELEASE_HINT)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise CheckpointError(f"cannot read LivePortrait checkpoint {path}: {type(exc).__name__}: {exc}\n"
                              + RELEASE_HINT) from exc


def _strict_load(module: torch.nn.Module, state: dict, path: Path, what: str) -> None:
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state_dict for {what}, found {type(state).__name__}\n"
                              + RELEASE_HINT)
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", shapes)):
            if items:
                parts.append(f"{label} ({len(items)}): " + ", ".join(items[:5]) + (" ..." if len(items) > 5 else ""))
        raise CheckpointError(f"{path} does not match LivePortrait's {what}: " + "; ".join(parts)
                              + "\nIs it a LivePortrait (human or animal) release file?\n" + RELEASE_HINT)
    module.load_state_dict(state, strict=True)


def load_liveportrait(weights_dir: Path | str, device: str | torch.device = "cpu") -> LivePortraitNets:
    """All networks from a released checkpoint folder, in eval mode."""
    root = resolve_root(weights_dir)
    nets = LivePortraitNets.build()
    for name, rel in BASE_FILES.items():
        path = root / rel
        _strict_load(getattr(nets, name), _load_file(path, root), path, name)
    path = root / RETARGETING_FILE
    bundle = _load_file(path, root)
    for entry, name in RETARGETING_ENTRIES.items():
        if not isinstance(bundle, dict) or entry not in bundle:
            raise CheckpointError(f"{path} has no '{entry}' entry (the {name} network); found "
                                  f"{sorted(bundle) if isinstance(bundle, dict) else type(bundle).__name__}\n"
                                  + RELEASE_HINT)
        # DDP leftovers: the loader of the reference deletes every 'module.' from the keys.
        state = {k.replace("module.", ""): v for k, v in bundle[entry].items()}
        _strict_load(getattr(nets, name), state, path, f"{name} ({entry})")
    return nets.eval().to(device)


def save_liveportrait(nets: LivePortraitNets, weights_dir: Path | str, ddp_prefix: bool = True) -> Path:
    """Write `nets` in the released layout under weights_dir (tests and the random-weight demo)."""
    root = Path(weights_dir)
    for name, rel in BASE_FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        torch.save(getattr(nets, name).state_dict(), root / rel)
    bundle = {}
    for entry, name in RETARGETING_ENTRIES.items():
        sd = getattr(nets, name).state_dict()
        bundle[entry] = {("module." + k if ddp_prefix else k): v for k, v in sd.items()}
    (root / RETARGETING_FILE).parent.mkdir(parents=True, exist_ok=True)
    torch.save(bundle, root / RETARGETING_FILE)
    return root
