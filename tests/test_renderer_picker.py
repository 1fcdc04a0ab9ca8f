"""The app's renderer picker: it says whether the chosen folder holds LivePortrait's weights,
and offers a renderer only when it can run."""

from __future__ import annotations

from pathlib import Path

from app.renderers import LIVEPORTRAIT, WEIGHTFREE, RendererChoice
from models.liveportrait import expected_files


def test_picker_reports_weights_and_emits_only_usable_choices(qtbot, tmp_path: Path) -> None:
    from app.gui.renderer_picker import RendererPicker

    picker = RendererPicker()
    qtbot.addWidget(picker)
    chosen: list[RendererChoice] = []
    picker.chosen.connect(chosen.append)
    picker.set_renderer(LIVEPORTRAIT)
    assert "No weights folder" in picker.status.text() and not chosen
    picker.set_folder(tmp_path)
    assert "Missing" in picker.status.text() and expected_files()[0] in picker.status.text() and not chosen
    assert "huggingface.co/KwaiVGI/LivePortrait" in picker.status.text()
    for name in expected_files():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    picker.set_folder(tmp_path)
    assert "found" in picker.status.text() and chosen == [RendererChoice(LIVEPORTRAIT, tmp_path)]
    picker.set_renderer(WEIGHTFREE)
    assert chosen[-1] == RendererChoice(WEIGHTFREE)
