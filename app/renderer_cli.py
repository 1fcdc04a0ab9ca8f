"""The command line's renderer options, kept apart from app/cli.py so they plug into whatever
options table it grows: `--renderer NAME` and `--weights DIR`."""

from __future__ import annotations

import argparse
from pathlib import Path

from .renderers import WEIGHTFREE, RendererChoice, renderer_names


def add_renderer_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--renderer", choices=renderer_names(), default=WEIGHTFREE,
                   help="weightfree: warps the portrait itself, no weights needed; liveportrait: LivePortrait's "
                        "networks, from checkpoints you bring with --weights (default: weightfree)")
    p.add_argument("--weights", type=Path, default=None, metavar="DIR",
                   help="the checkpoint folder of a learned renderer, e.g. LivePortrait's pretrained_weights "
                        "(default: none; nothing is ever downloaded)")


def renderer_choice(args: argparse.Namespace) -> RendererChoice:
    return RendererChoice(getattr(args, "renderer", WEIGHTFREE), getattr(args, "weights", None))
