from __future__ import annotations

import os
from pathlib import Path

# Qt aborts the process without a display unless this is set before it is imported.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"real footage folder {DATA_DIR} is absent (it sits beside the checkout in CI)")
    return DATA_DIR
