"""simrec: referring expression comprehension and segmentation toolbox (SimREC and MCN)."""

import os

# albumentations asks PyPI for a newer version at import; the toolbox must work offline.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
