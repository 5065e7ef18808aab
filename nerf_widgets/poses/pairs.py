"""Which image pairs to match: the matcher is chosen from the data and the reason is reported.

- exhaustive: every pair; small sets, where it is affordable and the most robust.
- sequential: each frame with its next neighbours (linear window + quadratic offsets), plus
  retrieval pairs as loop closure; for frames extracted from a video.
- retrieval: each image with its most similar images by a bag of visual words built on the fly from
  the SIFT descriptors already in the database (no vocabulary file to download); for large sets.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "EXHAUSTIVE_MAX",
    "MATCHERS",
    "choose_matcher",
    "exhaustive_pairs",
    "retrieval_pairs",
    "sequence_similarity",
    "sequential_pairs",
]

MATCHERS = ("auto", "exhaustive", "sequential", "retrieval")
EXHAUSTIVE_MAX = 150  # images; above this the n^2/2 pairs cost more than the mapping itself
SEQUENTIAL_MIN = 40  # below this exhaustive is cheap enough even for video frames
_VIDEO_SIMILARITY = 0.6  # consecutive thumbnails at least this correlated ...
_VIDEO_MARGIN = 0.15  # ... and this much more than random pairs: frames of a video


def sequence_similarity(thumbs: NDArray[np.float32]) -> tuple[float, float]:
    """Median correlation of consecutive thumbnails and of random pairs; thumbs [N,D] (grey, flattened)."""
    x = thumbs - thumbs.mean(1, keepdims=True)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-9
    consecutive = float(np.median((x[:-1] * x[1:]).sum(1)))
    perm = np.random.default_rng(0).permutation(len(x))
    keep = perm != np.arange(len(x))
    random = float(np.median((x[keep] * x[perm[keep]]).sum(1))) if keep.any() else consecutive
    return consecutive, random


def choose_matcher(requested: str, thumbs: NDArray[np.float32]) -> tuple[str, str]:
    """Pick the matcher for ``len(thumbs)`` images in filename order -> (matcher, reason for the report)."""
    n = len(thumbs)
    if requested != "auto":
        return requested, f"{requested} (requested)"
    consecutive, random = sequence_similarity(thumbs) if n > 2 else (0.0, 0.0)
    video = consecutive >= _VIDEO_SIMILARITY and consecutive - random >= _VIDEO_MARGIN
    stats = f"consecutive-frame similarity {consecutive:.2f} vs random pairs {random:.2f}"
    if video and n > SEQUENTIAL_MIN:
        return "sequential", f"{n} images that look like video frames ({stats}): sequential with loop closure"
    if n <= EXHAUSTIVE_MAX:
        return "exhaustive", f"{n} images <= {EXHAUSTIVE_MAX}: all {n * (n - 1) // 2} pairs ({stats})"
    return "retrieval", f"{n} images > {EXHAUSTIVE_MAX} and not a video ({stats}): nearest neighbours by visual words"


def exhaustive_pairs(n: int) -> list[tuple[int, int]]:
    """All pairs of indices ``i < j`` of ``n`` images."""
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def sequential_pairs(n: int, overlap: int = 10) -> list[tuple[int, int]]:
    """Each index with its next ``overlap`` neighbours and with those 2^k further on (COLMAP's quadratic overlap)."""
    pairs = set()
    for i in range(n):
        for d in range(1, overlap + 1):
            if i + d < n:
                pairs.add((i, i + d))
        for k in range(overlap.bit_length(), 16):
            if i + 2**k < n:
                pairs.add((i, i + 2**k))
    return sorted(pairs)


def retrieval_pairs(descriptors: list[NDArray[np.uint8]], k: int = 20, words: int = 512,
                    seed: int = 0) -> list[tuple[int, int]]:
    """Each image with its ``k`` most similar by tf-idf bag of visual words; descriptors: per image [n_i,128]."""
    from scipy.cluster.vq import kmeans2, vq

    rng = np.random.default_rng(seed)
    subsets = [d[rng.permutation(len(d))[:1000]].astype(np.float32) for d in descriptors]
    sample = np.concatenate([s[:max(10, 60000 // max(1, len(subsets)))] for s in subsets if len(s)])
    words = max(2, min(words, len(sample) // 20))
    codebook, _ = kmeans2(sample, words, iter=8, minit="points", seed=seed)  # "++" init is a slow Python loop
    hist = np.zeros((len(subsets), words))
    for i, s in enumerate(subsets):
        if len(s):
            np.add.at(hist[i], vq(s, codebook)[0], 1.0)
    idf = np.log(len(hist) / (1.0 + (hist > 0).sum(0)))
    tfidf = hist / np.maximum(hist.sum(1, keepdims=True), 1.0) * idf
    tfidf /= np.linalg.norm(tfidf, axis=1, keepdims=True) + 1e-12
    sim = tfidf @ tfidf.T
    np.fill_diagonal(sim, -np.inf)
    nearest = np.argsort(-sim, axis=1)[:, :k]
    return sorted({(min(i, int(j)), max(i, int(j))) for i in range(len(sim)) for j in nearest[i]})
