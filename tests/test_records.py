"""Stored rendering records: raw thumbnails and PNG bytes decode to the pixels they hold."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from embedding_explorer.records import RAW_MAGIC, as_png, encode_png, raw_header


@pytest.mark.parametrize("shape", [(9, 12), (8, 8, 3)], ids=["grey", "rgb"])
def test_raw_records_and_encoded_pngs_decode_to_their_pixels(shape: tuple[int, ...]) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    record = raw_header(pixels) + pixels.tobytes()
    assert record.startswith(RAW_MAGIC)
    for png in (as_png(record), encode_png(pixels)):
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), pixels)


def test_a_png_record_is_returned_as_it_is() -> None:
    png = encode_png(np.zeros((4, 4), dtype=np.uint8))
    assert as_png(png) is png
