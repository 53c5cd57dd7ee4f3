"""The renderer's image pixels: the whole-batch torch path against the per-array numpy one."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from PIL import Image

from embedding_explorer import render
from embedding_explorer.batches import Batch
from embedding_explorer.exceptions import EmbeddingExplorerError
from embedding_explorer.records import as_png
from embedding_explorer.render import ImageRender, Renderer


def _numpy_pixels(
    x: torch.Tensor, mean: float | Sequence[float] | None, std: float | Sequence[float] | None
) -> np.ndarray:
    """The pixels as numpy computes them (the renderer's earlier implementation): float32
    arrays, float64 where mean/std are given, a fixed range from the first batch otherwise."""
    arr = x.detach().float().cpu().numpy()
    if arr.ndim == 3:
        arr = arr[:, None]
    if mean is not None or std is not None:
        c = arr.shape[1]
        m = np.broadcast_to(np.asarray(mean if mean is not None else 0.0, float), (c,))
        s = np.broadcast_to(np.asarray(std if std is not None else 1.0, float), (c,))
        arr = arr * s[None, :, None, None] + m[None, :, None, None]
    else:
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0 and hi <= 1:
            lo, hi = 0.0, 1.0
        elif lo >= 0 and 1 < hi <= 255:
            lo, hi = 0.0, 255.0
        else:
            lo, hi = (float(v) for v in np.percentile(arr, [0.5, 99.5]))
        arr = (arr - lo) / (hi - lo)
    out = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    return out[:, 0] if out.shape[1] == 1 else np.moveaxis(out[:, :3], 1, -1)


def _halves(shape: tuple[int, ...], scale: float) -> torch.Tensor:
    """Values on and next to the rounding boundaries k + 0.5 of the 0..255 scale."""
    g = torch.Generator().manual_seed(1)
    k = torch.randint(0, 256, shape, generator=g).double()
    nudge = torch.randint(-1, 2, shape, generator=g).double() * 1e-6
    return ((k + 0.5 + nudge) / 255.0 * scale).float()


CASES = {
    "rgb in [0, 1]": (torch.rand(6, 3, 20, 24, generator=torch.Generator().manual_seed(0)), None, None),
    "halves in [0, 1]": (_halves((4, 3, 16, 16), 1.0), None, None),
    "rgb in [0, 255]": (_halves((4, 3, 16, 16), 255.0), None, None),
    "any range (percentiles)": (
        torch.randn(5, 3, 16, 12, generator=torch.Generator().manual_seed(2)) * 3,
        None,
        None,
    ),
    "normalised, per channel": (
        torch.randn(5, 3, 16, 16, generator=torch.Generator().manual_seed(3)),
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
    ),
    "grey (B, H, W), scalar mean and std": (
        torch.randn(7, 28, 28, generator=torch.Generator().manual_seed(4)),
        0.2860,
        0.3530,
    ),
    "grey (B, 1, H, W), std only": (
        torch.rand(3, 1, 9, 9, generator=torch.Generator().manual_seed(5)),
        None,
        2.0,
    ),
    "four channels": (
        torch.rand(3, 4, 10, 10, generator=torch.Generator().manual_seed(6)) * 2 - 0.5,
        None,
        None,
    ),
    "float64, not contiguous": (
        torch.rand(3, 12, 12, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(7)).permute(
            0, 3, 1, 2
        ),
        (0.5, 0.5, 0.5),
        (0.25, 0.25, 0.25),
    ),
}


@pytest.mark.parametrize("blocks", [False, True], ids=["whole", "in blocks"])
@pytest.mark.parametrize("case", list(CASES))
def test_pixels_equal_the_numpy_path_byte_for_byte(
    case: str, blocks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also a block of two images at a time (the last block short, or one image)."""
    x, mean, std = CASES[case]
    if blocks:
        monkeypatch.setattr("embedding_explorer.threads.BLOCK_PIXELS", 2 * x.shape[-1] * x.shape[-2])
    renderer = Renderer(ImageRender(mean, std), None)
    before = x.clone()
    records = renderer.render(Batch(inputs=x, size=len(x), labels=None, attention_mask=None))
    expected = _numpy_pixels(x, mean, std)
    assert renderer.last_pixels is not None
    assert renderer.last_pixels.dtype == np.uint8
    np.testing.assert_array_equal(renderer.last_pixels, expected)
    assert records is not None and [r[-expected[0].nbytes :] for r in records] == [
        p.tobytes() for p in expected
    ]
    assert torch.equal(x, before)  # the inputs are left as they were


def test_later_batches_keep_the_first_batchs_range() -> None:
    g = torch.Generator().manual_seed(8)
    first, second = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 3, 8, 8, generator=g) * 5
    renderer = Renderer("image", None)
    renderer.render(Batch(inputs=first, size=4, labels=None, attention_mask=None))
    renderer.render(Batch(inputs=second, size=4, labels=None, attention_mask=None))
    lo, hi = (float(v) for v in np.percentile(first.numpy(), [0.5, 99.5]))
    scaled = (second.numpy() - lo) / (hi - lo)
    expected = np.moveaxis(np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8), 1, -1)
    np.testing.assert_array_equal(renderer.last_pixels, expected)


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # the NaN pixel itself
def test_a_nan_pixel_in_the_first_batch_does_not_set_the_range() -> None:
    """The range comes from the first batch's finite values: a NaN or inf pixel (a model that
    tolerates it) left every later image black."""
    g = torch.Generator().manual_seed(8)
    first, second = torch.rand(4, 3, 8, 8, generator=g) * 4 - 2, torch.rand(4, 3, 8, 8, generator=g) * 4 - 2
    clean = Renderer("image", None)
    clean.render(Batch(inputs=first, size=4, labels=None, attention_mask=None))
    clean.render(Batch(inputs=second, size=4, labels=None, attention_mask=None))
    spoiled = first.clone()
    spoiled[0, 0, 0, 0], spoiled[1, 2, 3, 4] = float("nan"), float("inf")
    renderer = Renderer("image", None)
    renderer.render(Batch(inputs=spoiled, size=4, labels=None, attention_mask=None))
    renderer.render(Batch(inputs=second, size=4, labels=None, attention_mask=None))
    finite = first.numpy().copy()
    finite[0, 0, 0, 0], finite[1, 2, 3, 4] = np.nan, np.nan
    lo, hi = (float(v) for v in np.nanpercentile(finite, [0.5, 99.5]))
    scaled = (second.numpy() - lo) / (hi - lo)  # by hand, without the two spoiled pixels
    expected = np.moveaxis(np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8), 1, -1)
    np.testing.assert_array_equal(renderer.last_pixels, expected)
    assert clean.last_pixels is not None and renderer.last_pixels.std() > 10  # not all black


@pytest.fixture
def parts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of parts of each batch the renderer shares among 3 torch threads."""
    counts: list[int] = []
    split = render.by_parts

    def counted(work, batch, workers):  # type: ignore[no-untyped-def]
        done = split(work, batch, workers)
        counts.append(len(done))
        return done

    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    monkeypatch.setattr(render, "by_parts", counted)
    return counts


@pytest.mark.parametrize("mean, std", [(None, None), ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
def test_threads_share_a_large_batch_with_the_same_pixels(parts: list[int], mean, std) -> None:
    x = torch.randn(30, 3, 128, 96, generator=torch.Generator().manual_seed(9))
    renderer = Renderer(ImageRender(mean, std), None)
    renderer.render(Batch(inputs=x, size=len(x), labels=None, attention_mask=None))
    assert parts == [3]
    np.testing.assert_array_equal(renderer.last_pixels, _numpy_pixels(x, mean, std))


def test_threads_shrink_a_batch_of_large_images_as_pil_does_each(parts: list[int]) -> None:
    """Images larger than a thumbnail shrink in parts of the batch side by side, each exactly as
    PIL's ``thumbnail`` (Lanczos) shrinks it alone."""
    x = torch.rand(24, 3, 224, 200, generator=torch.Generator().manual_seed(4))
    renderer = Renderer("image", None)
    records = renderer.render(Batch(inputs=x, size=len(x), labels=None, attention_mask=None))
    assert parts == [3, 3]  # the pixels, then the thumbnails
    assert renderer.last_pixels is not None and records is not None
    for image, record in zip(renderer.last_pixels, records, strict=True):
        expected = Image.fromarray(image)
        expected.thumbnail((128, 128), Image.Resampling.LANCZOS)
        shown = np.asarray(Image.open(io.BytesIO(as_png(record))))
        np.testing.assert_array_equal(shown, np.asarray(expected))


def test_a_mean_or_std_of_other_channels_is_refused_by_name() -> None:
    """ImageNet's three means on grey or four-channel images: an error naming the argument and
    the channels, not numpy's broadcast error."""
    renderer = Renderer(ImageRender((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), None)
    for channels in (1, 4):
        x = torch.randn(2, channels, 8, 8)
        with pytest.raises(
            EmbeddingExplorerError,
            match=rf"mean=\(0.485, 0.456, 0.406\)\) has 3 values .* {channels} channel",
        ):
            renderer.render(Batch(inputs=x, size=2, labels=None, attention_mask=None))
    grey = Renderer(ImageRender(0.5, (0.25,)), None)  # one value each: any number of channels
    assert grey.render(Batch(inputs=torch.zeros(2, 1, 8, 8), size=2, labels=None, attention_mask=None))
