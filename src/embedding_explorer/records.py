"""The bytes of one stored sample rendering: its kind, raw thumbnails, PNG encoding.

Written by :mod:`render` during extraction, read back by :class:`~embedding_explorer.run.Run`,
the report and the server, which never need the capture-time renderer.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

IMAGE = "image/png"
# Image thumbnails are stored as raw pixels after this magic (no PNG magic starts so): copying is
# ~40x cheaper than zlib during extraction, and a PNG is made when one is read.
RAW_MAGIC = b"EERAW"
TEXT = "text/plain"


def raw_header(pixels: np.ndarray) -> bytes:
    """The header of a raw thumbnail record: magic, height, width, channels."""
    channels = 1 if pixels.ndim == 2 else int(pixels.shape[2])
    return RAW_MAGIC + struct.pack("<HHB", pixels.shape[0], pixels.shape[1], channels)


def as_png(record: bytes) -> bytes:
    """A stored image record as PNG bytes: small thumbnails are stored raw and encoded here."""
    if not record.startswith(RAW_MAGIC):
        return record
    height, width, channels = struct.unpack_from("<HHB", record, len(RAW_MAGIC))
    pixels = np.frombuffer(record, dtype=np.uint8, offset=len(RAW_MAGIC) + 5)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return encode_png(pixels.reshape(shape))


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB image (rows unfiltered, zlib).

    Several times faster than PIL's encoder for the small thumbnails a run stores by the
    thousand; PIL still shrinks images larger than the thumbnail size.
    """
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    colour = 0 if pixels.ndim == 2 else 2
    rows = np.zeros((height, 1 + pixels[0].size), dtype=np.uint8)  # filter byte 0 per row
    rows[:, 1:] = pixels.reshape(height, -1)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)),
            _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)),
            _png_chunk(b"IEND", b""),
        )
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
