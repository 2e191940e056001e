"""Small synthetic data the project writes itself, for the quickstart and examples.

Nothing here is downloaded: the texts are assembled from word lists with a
seeded random generator, so every run of an example sees the same rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_POS = [
    "a delight from start to finish", "warm, funny and beautifully acted",
    "the best thing I have seen this year", "I loved every minute of it",
    "smart writing and a great cast", "moving, clever and well paced",
    "an absolute joy to watch", "wonderful music and lovely photography",
    "I would happily watch it again", "charming and full of heart",
]
_NEG = [
    "a complete waste of time", "dull, slow and badly acted",
    "the worst thing I have seen this year", "I was bored from the first scene",
    "clumsy writing and a wooden cast", "confusing, tedious and far too long",
    "a painful experience to sit through", "terrible sound and ugly photography",
    "I walked out halfway through", "lifeless and completely forgettable",
]
_SUBJ = ["This film", "The new series", "This documentary", "The sequel", "This comedy",
         "The animated feature", "This thriller", "The remake", "This drama", "The musical"]
_TAIL = ["", " Recommended to friends.", " Not what I expected.", " Saw it on Sunday.",
         " The ending surprised me.", " My kids had opinions too.", ""]
_NEG_TAIL = [" Avoid it.", " Never again.", ""]
_POS_TAIL = [" Go see it.", " Five stars.", ""]


def make_reviews(n: int = 600, *, seed: int = 0, null_share: float = 0.0) -> pd.DataFrame:
    """Short movie reviews with a known sentiment.

    Parameters
    ----------
    n
        Number of rows.
    seed
        Seeds every choice, so the frame is reproducible.
    null_share
        Share of rows whose ``review`` is missing, as in real exports.

    Returns
    -------
    pandas.DataFrame
        Columns ``review`` (str, may be null), ``stars`` (int 1-5) and
        ``positive`` (bool, the sentiment the text was written with).

    Examples
    --------
    >>> df = make_reviews(5, seed=1)
    >>> list(df.columns)
    ['review', 'stars', 'positive']
    """
    rng = np.random.default_rng(seed)
    positive = rng.random(n) < 0.5
    reviews: list[str | None] = []
    stars = np.empty(n, dtype=np.int64)
    for i in range(n):
        subj = _SUBJ[rng.integers(len(_SUBJ))]
        if positive[i]:
            body = _POS[rng.integers(len(_POS))]
            tail = _POS_TAIL[rng.integers(len(_POS_TAIL))]
            stars[i] = rng.integers(4, 6)
        else:
            body = _NEG[rng.integers(len(_NEG))]
            tail = _NEG_TAIL[rng.integers(len(_NEG_TAIL))]
            stars[i] = rng.integers(1, 3)
        extra = _TAIL[rng.integers(len(_TAIL))]
        reviews.append(f"{subj} is {body}.{tail}{extra}".strip())
    if null_share > 0:
        for i in np.flatnonzero(rng.random(n) < null_share):
            reviews[i] = None
    return pd.DataFrame({"review": reviews, "stars": stars, "positive": positive})
