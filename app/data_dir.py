"""Where the real test footage lives: ../shared/data beside the checkout, or $PUPPETCAM_DATA.

The footage is not part of the project (it is other people's material, see the README in that
folder); the tests, `python -m app.bench`, `app.contact_sheet` and `app.evaluate` use it and
say what they need when it is absent instead of failing with a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "PUPPETCAM_DATA"


def default_data_dir() -> Path:
    """$PUPPETCAM_DATA if set, otherwise ../shared/data beside the checkout."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def missing_data_message(tool: str, wanted: Path) -> str:
    """One message for a tool that needs footage which is not there."""
    return (f"{tool}: {wanted} does not exist. It needs the real footage folder (driving/ clips and "
            f"portraits/), by default ../shared/data beside the checkout; point {ENV_VAR}=FOLDER at "
            "another copy, or pass the files on the command line (see --help).")
