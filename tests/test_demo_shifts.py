"""The demo's data-set comparison: the inverted test images."""

from __future__ import annotations

import numpy as np
import pytest

from embedding_explorer.demos import shifts


def test_invert() -> None:
    images = np.array([[[0, 10], [200, 255]]], dtype=np.uint8)
    inverted = shifts.invert(images)
    assert inverted.dtype == np.uint8 and inverted.tolist() == [[[255, 245], [55, 0]]]
    np.testing.assert_array_equal(shifts.invert(inverted), images)
    with pytest.raises(ValueError, match="expected uint8 images"):
        shifts.invert(images.astype(np.float32))
