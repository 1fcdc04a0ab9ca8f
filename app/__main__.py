import os
import sys

# MediaPipe's C++ side logs through glog/absl: keep its start-up chatter off the user's console.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if "--verbose" not in sys.argv[1:]:
    # Those variables no longer silence mediapipe 0.10's lines; filter them out of stderr.
    from .native_logs import install

    install()

from .cli import main

sys.exit(main())
