"""DINOv3 accelerator acceptance library.

Everything the pytest suite needs that is not a fixture: options and the frozen
run configuration, device backends, checkpoint loading, images, metrics and
thresholds. Nothing here imports pytest, so the command lines (inference.py,
benchmark.py) use the same code as the suite.
"""

__version__ = "0.1.0"
