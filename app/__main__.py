import os
import sys

# MediaPipe's C++ side logs through glog/absl: keep its start-up chatter off the user's console.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .cli import main

sys.exit(main())
