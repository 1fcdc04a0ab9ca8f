"""A new sink is one registered class, opened by name from the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.sink_registry import SINKS, register_sink


class MemorySink:
    frames: list[np.ndarray] = []

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        self.name = "memory"
        MemorySink.frames = []

    def write(self, image: np.ndarray) -> None:
        MemorySink.frames.append(image.copy())

    def close(self) -> None:
        pass


@pytest.fixture
def memory_sink():
    register_sink("test-memory", needs=("size",))(MemorySink)
    yield MemorySink
    SINKS.unregister("test-memory")


def test_a_registered_sink_is_used_by_name_from_the_cli(memory_sink, data_dir: Path) -> None:
    code = main(["live", "--driver", str(data_dir / "driving" / "lp_d0.mp4"), "--size", "128x128",
                 "--sink", "test-memory"])
    assert code == 0
    assert len(memory_sink.frames) > 20 and memory_sink.frames[0].shape == (128, 128, 3)


def test_an_unknown_sink_is_a_clear_error(capsys, data_dir: Path) -> None:
    code = main(["live", "--driver", str(data_dir / "driving" / "lp_d0.mp4"), "--sink", "nope"])
    assert code == 1 and "No sink is called 'nope'" in capsys.readouterr().err
