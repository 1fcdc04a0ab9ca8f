"""PuppetCam: animate a still portrait with a face tracked live from a webcam or a video.

Data flows one way: capture -> track -> retarget -> render -> composite -> sinks.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "assets"
DEFAULT_AVATAR = ASSETS_DIR / "avatars" / "mona_lisa.jpg"
