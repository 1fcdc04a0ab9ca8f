from __future__ import annotations

import os
from pathlib import Path

# Qt aborts the process without a display unless this is set before it is imported.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from app.data_dir import ENV_VAR, default_data_dir

# The real footage (other people's clips and portraits, listed with their origins and licences
# in that folder's README.md) is not part of the project: it sits in ../shared/data beside the
# checkout in CI, and $PUPPETCAM_DATA points the tests at another copy.
DATA_DIR = default_data_dir()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"real footage folder {DATA_DIR} is absent: the tests that need it use real clips and "
                    f"portraits kept beside the checkout (../shared/data, see its README.md for their origins); "
                    f"set {ENV_VAR}=FOLDER to use another copy")
    return DATA_DIR


def pytest_configure(config: pytest.Config) -> None:
    # Kept in the default run; `-m "not slow"` leaves them out (e.g. real networks on a CPU).
    config.addinivalue_line("markers", "slow: takes about a minute or more on a 2-core CPU")
