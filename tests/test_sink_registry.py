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


def test_the_built_in_sinks_are_registered_by_name() -> None:
    from app.sink_registry import SinkContext

    assert {"virtual-camera", "preview", "file"} <= set(SINKS.names())
    with pytest.raises(Exception, match="needs path"):  # --sink file has no path: --record is for that
        SINKS.open("file", SinkContext((64, 64), 30.0))


def test_record_goes_through_the_registry(memory_sink, data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    opened = []
    real = SINKS.open
    monkeypatch.setattr(SINKS, "open", lambda name, context: opened.append((name, context)) or real(name, context))
    out = tmp_path / "rec.mp4"
    code = main(["live", "--driver", str(data_dir / "driving" / "lp_d0.mp4"), "--size", "96x96",
                 "--record", str(out), "--sink", "test-memory"])
    assert code == 0 and out.is_file()
    assert [n for n, _ in opened] == ["test-memory", "file"] and opened[1][1].path == out
