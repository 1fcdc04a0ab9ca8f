"""`python -m app.evaluate [FOLDER ...]`: how good the animation is, measured on real footage.

- metrics.py: the pure numbers (L1, PSNR, SSIM, AKD, jitter, flicker, pose and transfer helpers)
- identity.py: face-recognition descriptors (dlib ResNet) for identity preservation
- data.py: clips, portraits, the fixed cross-reenactment pairs, the 256x256 face crop
- reenactment.py: runs the pipeline and measures self-/cross-reenactment, stability, speed, memory
- report.py: docs/evaluation/report.md with tables, plots, contact sheets and the run history
"""
