"""Low-level statistics of each input, recorded as metadata columns of every run.

A model that leans on brightness or colour where it should see shapes is the first thing to
check (the original description's examples: brightness, orange vs blue, saturation in a
ResNet's first layer). These columns make that check one association away: each one is a
per-sample number computed on the sample *as rendered* (the 8-bit thumbnail pixels before any
downsizing, i.e. after undoing the data's normalisation, see :mod:`render`), or on its text.

Images (``P`` = the pixels scaled to [0, 1]; grey images have ``L = P``; colour images
``L = 0.299 R + 0.587 G + 0.114 B``, ITU-R BT.601 luma):

``brightness``
    mean of ``L`` over the pixels, in [0, 1].
``contrast``
    RMS contrast: the standard deviation of ``L`` over the pixels (population, ddof=0), in [0, 0.5].
``edge_density``
    share of pixels on an edge: with forward differences ``gx = L[i, j+1] - L[i, j]`` and
    ``gy = L[i+1, j] - L[i, j]`` over the ``(H-1) x (W-1)`` pixels that have both, the fraction
    with ``sqrt(gx^2 + gy^2) > EDGE_THRESHOLD`` (0.1, a tenth of the full range), in [0, 1].

Colour images only:

``saturation``
    mean HSV saturation ``(max(R,G,B) - min(R,G,B)) / max(R,G,B)`` (0 where the pixel is
    black), in [0, 1].
``red_green``
    mean of ``R - G``: positive for reddish images, negative for greenish ones, in [-1, 1].
``blue_yellow``
    mean of ``B - (R + G) / 2``: positive for bluish images, negative for yellow/orange ones,
    in [-1, 1].

Texts:

``n_tokens``
    the number of tokens the model saw (the attention mask's sum; the sequence length without one).
``n_words``
    the number of whitespace-separated words of the sample's text.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from .threads import Scratch, by_parts, images_per_block

EDGE_THRESHOLD = 0.1
GREY_STATS = ("brightness", "contrast", "edge_density")
COLOUR_STATS = (*GREY_STATS, "saturation", "red_green", "blue_yellow")
TEXT_STATS = ("n_tokens", "n_words")
ALL_STATS = (*COLOUR_STATS, *TEXT_STATS)
LUMA_PER_MILLE = np.array([299, 587, 114], dtype=np.int32)  # LUMA * 1000: integer luma
SCRATCH_BYTES = 8 << 20  # the most working arrays one thread keeps from one batch to the next
SCRATCH_BYTES_PER_PIXEL = 29  # luma, term, gx, gy (int32), high, low, edge (uint8), pair, saturation


def _saturation_table() -> np.ndarray:
    """``(high - low) / high`` for every pair of 8-bit channel extremes (0 where high is 0)."""
    high = np.arange(256, dtype=np.float64)[:, None]
    low = np.arange(256, dtype=np.float64)[None, :]
    return np.divide(high - low, high, out=np.zeros((256, 256)), where=high > 0)


_SATURATION = _saturation_table()  # [high, low]


def image_statistics(
    pixels: np.ndarray, workers: int = 1, scratch: Scratch | None = None
) -> dict[str, np.ndarray]:
    """The statistics of a batch of rendered images, one float64 value per image each.

    Parameters
    ----------
    pixels : ndarray of shape (B, H, W) or (B, H, W, 3), uint8
        Images as rendered: grey or RGB, 0..255.
    workers : int, default=1
        Threads that share the batch, whole images each (:mod:`.threads`), for a caller that
        owns that many idle cores. Every image's values are the same either way.
    scratch : Scratch, optional
        Working arrays reused from one call to the next (the renderer's, during extraction:
        fresh per-pixel temporaries cost as much as the arithmetic), a set on each thread that
        takes a part, sized for one block of images (:func:`.threads.images_per_block`, 29 bytes
        a pixel: 3.8 MB) where that is at most ``SCRATCH_BYTES``; default, and for images larger
        than that: fresh ones. So the pool's threads keep at most ``SCRATCH_BYTES`` each (16
        threads: 128 MiB at most, 61 MiB for the usual block).

    Returns
    -------
    dict
        ``GREY_STATS`` for grey images, ``COLOUR_STATS`` for colour ones.

    Computed on integers where the definition allows (luma scaled by 1000, its sums and sums of
    squares, the channel differences): exact, and several times faster than float64 arrays of
    every pixel; only the per-pixel saturation ratio is floating point.
    """
    per_block = images_per_block(pixels.shape[1], pixels.shape[2])
    block_pixels = min(len(pixels), per_block) * pixels.shape[1] * pixels.shape[2]
    if scratch is not None and block_pixels * SCRATCH_BYTES_PER_PIXEL > SCRATCH_BYTES:
        scratch = None  # images this large: fresh arrays, freed after them, rather than kept
    work = functools.partial(_in_blocks, per_block=per_block, scratch=scratch)
    done = by_parts(work, np.asarray(pixels, dtype=np.uint8), workers)
    return _joined(done)


def _in_blocks(pixels: np.ndarray, per_block: int, scratch: Scratch | None) -> dict[str, np.ndarray]:
    """:func:`_image_statistics` of ``pixels``, ``per_block`` images at a time
    (:func:`.threads.images_per_block`): a block's per-pixel temporaries (29 bytes a pixel,
    3.8 MB) then stay in a core's cache across the twenty passes over them, and in the reused
    scratch (measured with blocks of 2^18 pixels, 2^17 within 2% of it: 64 images of 224 x 224,
    19.6 ms against 42.6 ms on one thread, 11.7 against 27-34 ms on two; 112 x 112, 4.8 against
    5.8 ms on one; the same at 32 x 32)."""
    if len(pixels) <= per_block:
        return _image_statistics(pixels, scratch)
    scratch = scratch or Scratch()  # one set of temporaries for all the blocks
    blocks = range(0, len(pixels), per_block)
    return _joined([_image_statistics(pixels[i : i + per_block], scratch) for i in blocks])


def _joined(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return (
        parts[0] if len(parts) == 1 else {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    )


def _image_statistics(pixels: np.ndarray, scratch: Scratch | None = None) -> dict[str, np.ndarray]:
    """:func:`image_statistics` on one thread, its per-pixel temporaries in ``scratch`` (default:
    fresh arrays)."""
    scratch = scratch or Scratch()
    pixels = np.asarray(pixels, dtype=np.uint8)
    colour = pixels.ndim == 4
    shape = pixels.shape[:3]
    n = shape[1] * shape[2]
    luma = scratch.array("luma", shape, np.int32)
    if colour:
        # per-channel views and elementwise max/min: a reduction over the last axis of 3 is
        # several times slower than two elementwise passes (measured: 35 ms vs 7 ms for 64 RGB
        # images of 112 x 112)
        r, g, b = (pixels[..., i] for i in range(3))
        np.multiply(r, LUMA_PER_MILLE[0], out=luma, dtype=np.int32)
        term = scratch.array("term", shape, np.int32)
        for weight, channel in zip(LUMA_PER_MILLE[1:], (g, b), strict=True):
            np.multiply(channel, weight, out=term, dtype=np.int32)
            luma += term  # L * 255 * 1000, exactly
        scale = 255.0 * 1000.0
        red, green, blue = (_plane_sums(c) for c in (r, g, b))
        total = LUMA_PER_MILLE[0] * red + LUMA_PER_MILLE[1] * green + LUMA_PER_MILLE[2] * blue  # sum of L
    else:
        np.copyto(luma, pixels)
        scale = 255.0
        total = _plane_sums(pixels)
    flat = luma.reshape(len(luma), -1)
    squares = np.einsum("ij,ij->i", flat, flat, dtype=np.int64)
    variance = (squares - total.astype(np.float64) * total / n) / n  # population variance
    out = {
        "brightness": total / (scale * n),
        "contrast": np.sqrt(np.maximum(variance, 0.0)) / scale,
        "edge_density": _edges(luma, (EDGE_THRESHOLD * scale) ** 2, scratch),
    }
    if colour:
        high, low = scratch.array("high", shape, np.uint8), scratch.array("low", shape, np.uint8)
        np.maximum(np.maximum(r, g, out=high), b, out=high)
        np.minimum(np.minimum(r, g, out=low), b, out=low)
        pair = scratch.array("pair", shape, np.uint16)  # high << 8 | low: the saturation of each
        np.copyto(pair, high)  # (high, low) pair is looked up, the same float64 values as
        pair <<= 8  # dividing every pixel (2x faster)
        pair |= low
        saturation = scratch.array("saturation", shape, np.float64)  # "clip": every index is in range
        np.take(_SATURATION.ravel(), pair, out=saturation, mode="clip")  # ("raise" buffers a copy)
        out["saturation"] = saturation.reshape(len(pixels), -1).mean(axis=1)
        out["red_green"] = (red - green) / (255.0 * n)
        out["blue_yellow"] = (2 * blue - red - green) / (2 * 255.0 * n)
    return out


def _plane_sums(plane: np.ndarray) -> np.ndarray:
    """Each image's sum of one 8-bit plane ``(B, H, W)``, int64. Accumulated in uint32 where the
    sum fits (2x faster than int64: measured 106 vs 226 us for 64 planes of 112 x 112)."""
    fits = plane[0].size * 255 < 2**32
    return plane.sum(axis=(1, 2), dtype=np.uint32 if fits else np.int64).astype(np.int64)


def _edges(luma: np.ndarray, threshold_squared: float, scratch: Scratch | None = None) -> np.ndarray:
    """Share of the ``(H-1) x (W-1)`` pixels whose forward-difference gradient is longer than the
    threshold (compared squared, on the integer luma).

    In int32, exactly: a difference is capped at the least integer whose square exceeds the
    threshold (a capped pixel is an edge either way), so the sum of two squares stays below
    2^31; an integer sum exceeds the threshold iff it exceeds its floor. 5x faster than int64.
    Each image's differences are taken along its pixels in row-major order, so both are
    contiguous runs (1.6x faster than the strided ``[:, :-1, 1:]`` slices at 112 x 112): the
    horizontal difference at the last column of a row, which would reach into the next row, is
    left out of the count."""
    count, height, width = luma.shape
    if height < 2 or width < 2:
        return np.zeros(count)
    scratch = scratch or Scratch()
    floor = math.floor(threshold_squared)
    cap = math.isqrt(floor) + 1  # cap * cap > threshold_squared
    dtype = np.int32 if 2 * cap * cap < 2**31 else np.int64
    flat = luma.reshape(count, -1)
    span = (height - 1) * width  # positions (i, j) with i < H - 1, row-major
    shape = (count, span)
    start = flat[:, :span]
    gx = np.subtract(flat[:, 1 : span + 1], start, dtype=dtype, out=scratch.array("gx", shape, dtype))
    gy = np.subtract(flat[:, width:], start, dtype=dtype, out=scratch.array("gy", shape, dtype))
    for g in (gx, gy):
        np.abs(g, out=g)
        np.minimum(g, cap, out=g)
        g *= g
    gx += gy
    edge = np.greater(gx, floor, out=scratch.array("edge", shape, np.bool_))
    edge.reshape(count, height - 1, width)[:, :, width - 1] = False  # no right neighbour there
    edges = edge.view(np.uint8).sum(axis=1, dtype=np.uint32 if span < 2**32 else np.int64)
    return edges / ((height - 1) * (width - 1))


def colourless_columns(columns: dict[str, np.ndarray]) -> list[str]:
    """The colour statistics among ``columns`` to leave out of a run: all three where each is 0
    for every sample (every image grey, as :func:`original_image_statistics` records a grey
    image among colour ones), else none."""
    colour = ("saturation", "red_green", "blue_yellow")
    if all(name in columns and not np.any(columns[name]) for name in colour):
        return list(colour)
    return []


def text_statistics(
    texts: Sequence[str], attention_mask: torch.Tensor | None, n_tokens: int | None
) -> dict[str, np.ndarray]:
    """``n_words`` of each text and ``n_tokens`` from the batch's attention mask (or, without
    one, the sequence length ``n_tokens``; the column is left out when neither is known)."""
    out = {"n_words": np.array([len(str(t).split()) for t in texts], dtype=np.float64)}
    if attention_mask is not None:
        mask = attention_mask.detach().cpu()
        out["n_tokens"] = mask.reshape(len(mask), -1).sum(dim=1).double().numpy()
    elif n_tokens is not None:
        out["n_tokens"] = np.full(len(texts), float(n_tokens))
    return out


def original_image_statistics(images: Sequence[Image.Image]) -> dict[str, np.ndarray]:
    """:func:`image_statistics` of images of any sizes (an image folder's thumbnails, as the
    renderer shrank them), every image as RGB, so that every batch records the same columns
    whatever mix of grey and colour files it holds: a grey image has the same brightness,
    contrast and edges as in grey (the luma weights sum to 1) and no saturation or colour
    opposition (0). A run whose images are all grey leaves those three out
    (:func:`colourless_columns`)."""
    columns: list[dict[str, np.ndarray]] = []
    for image in images:
        columns.append(image_statistics(np.asarray(image.convert("RGB"), dtype=np.uint8)[None]))
    return {name: np.concatenate([c[name] for c in columns]) for name in columns[0]} if columns else {}
