"""Sample stage: a uniform random draw of rows, seeded.

Uniform sampling is what the cascade's guarantee rests on (see
:mod:`thrifty_frames._stages.evaluate`): the calibration rows must be
exchangeable with the rows the proxy decides.
"""

from __future__ import annotations

import numpy as np


def draw_sample(rows: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` of ``rows`` without replacement, in random order.

    When ``size`` covers every row, all rows come back (shuffled).
    """
    rng = np.random.default_rng(seed)
    if size >= len(rows):
        return rng.permutation(rows)
    return rng.choice(rows, size=size, replace=False)
