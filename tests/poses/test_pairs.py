"""Matcher choice from the data, and the pair generators."""

from __future__ import annotations

import numpy as np

from nerf_widgets.poses.pairs import (
    EXHAUSTIVE_MAX,
    choose_matcher,
    exhaustive_pairs,
    retrieval_pairs,
    sequential_pairs,
)


def _video_thumbs(n: int) -> np.ndarray:
    """A slow pan over a random texture: consecutive frames nearly equal, distant ones unrelated."""
    coarse = np.random.default_rng(0).random((4, 4 + n // 4 + 1)).astype(np.float32)
    strip = np.kron(coarse, np.ones((8, 8), np.float32))  # 8 px blobs, panned 2 px per frame
    return np.stack([strip[:, 2 * i: 2 * i + 32].ravel() for i in range(n)])


def test_matcher_follows_the_data():
    random_views = np.random.default_rng(1).random((60, 1024)).astype(np.float32)
    assert choose_matcher("auto", random_views)[0] == "exhaustive"
    kind, reason = choose_matcher("auto", _video_thumbs(60))
    assert kind == "sequential" and "video" in reason
    assert choose_matcher("auto", _video_thumbs(20))[0] == "exhaustive"  # few frames: all pairs are cheap
    big = np.random.default_rng(2).random((EXHAUSTIVE_MAX + 1, 64)).astype(np.float32)
    assert choose_matcher("auto", big)[0] == "retrieval"
    assert choose_matcher("sequential", random_views) == ("sequential", "sequential (requested)")


def test_pair_generators():
    assert len(exhaustive_pairs(10)) == 45
    seq = sequential_pairs(100, overlap=3)
    assert (0, 1) in seq and (0, 3) in seq and (0, 5) not in seq and (0, 16) in seq and (0, 64) in seq
    assert all(i < j for i, j in seq)


def test_retrieval_pairs_find_images_sharing_words():
    rng = np.random.default_rng(3)
    places = [rng.integers(0, 256, (300, 128)) for _ in range(4)]  # 4 places, 3 photos each
    descs = [np.clip(places[k // 3] + rng.integers(-3, 4, (300, 128)), 0, 255).astype(np.uint8) for k in range(12)]
    pairs = set(retrieval_pairs(descs, k=2, words=64))
    same_place = {(i, j) for i in range(12) for j in range(i + 1, 12) if i // 3 == j // 3}
    assert same_place <= pairs
