"""How samples are shown without the data set: small thumbnails or text, one per sample.

Renderings are made while the data streams through extraction and packed into one file per run
(see :mod:`store`), so a fresh process shows samples without the data set. The bytes of one
stored rendering, and how a reader turns them back into PNG, are :mod:`records`.
"""

from __future__ import annotations

import functools
import hashlib
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image

from .batches import Batch
from .clips import AUDIO, AudioClip
from .exceptions import EmbeddingExplorerError
from .fingerprint import callable_digest
from .records import IMAGE, TEXT, raw_header
from .threads import Scratch, by_parts, images_per_block


@dataclass(frozen=True)
class ImageRender:
    """Images as thumbnails, undoing the data's normalisation when ``mean``/``std`` are given.

    Without ``mean``/``std``, values in [0, 1] or [0, 255] are taken as they are; other ranges
    are mapped with one fixed range for the whole data set (taken from the first batch), so the
    brightness of samples stays comparable.
    """

    mean: float | Sequence[float] | None = None
    std: float | Sequence[float] | None = None
    max_size: int = 128


@runtime_checkable
class Originals(Protocol):
    """A data set that shows sample ``i`` as ``original(i)`` (a PIL image, a text or an
    :class:`~.clips.AudioClip`), by position: thumbnails of the original files, not of the
    resized and normalised tensors the model sees.
    Pass the data set itself as ``render=`` (e.g. the image folders of
    :func:`embedding_explorer.load_data`)."""

    def __len__(self) -> int: ...

    def original(self, index: int) -> Image.Image | str | AudioClip: ...

    def content_fingerprint(self) -> str: ...


RenderSpec = str | ImageRender | Sequence[str] | Originals | Callable[[Any], Any] | None


class Renderer:
    """Turns each batch into per-sample bytes of one kind (``IMAGE``, ``TEXT`` or ``AUDIO``), or
    nothing."""

    def __init__(self, spec: RenderSpec, n_samples: int | None) -> None:
        if not callable(spec) and (isinstance(spec, np.ndarray) or hasattr(spec, "to_numpy")):
            spec = list(np.asarray(spec).tolist())  # texts as an array or a pandas Series
        self.spec = spec
        self.kind: str | None = None
        self._image = spec if isinstance(spec, ImageRender) else ImageRender()
        self._range: tuple[float, float] | None = None
        self._texts: Sequence[str] | None = None
        self._originals: Originals | None = None
        self._seen = 0
        self.last_pixels: np.ndarray | None = None  # the last batch's images as rendered, uint8
        self.last_images: list[Image.Image] = []  # ... or its image files' thumbnails (any sizes)
        self.last_counts: np.ndarray | None = None  # samples per rendering of the last batch (None: 1)
        self.last_columns: dict[str, np.ndarray] | None = None  # input statistics made with them
        self.loaded_without_stats = False  # the last batch's renderings came made, without them
        self.scratch = Scratch()  # the input statistics' working arrays for these pixels (threads.Scratch)
        if isinstance(spec, Originals):
            if n_samples is not None and len(spec) != n_samples:
                raise EmbeddingExplorerError(f"render has {len(spec)} samples for {n_samples} samples")
            self._originals = spec
        elif spec is None or spec in ("image", "text", "none") or isinstance(spec, ImageRender):
            pass
        elif isinstance(spec, str):
            raise ValueError(f"render={spec!r}: use 'image', 'text', 'none', a callable or a list of texts")
        elif isinstance(spec, Sequence):
            if n_samples is not None and len(spec) != n_samples:
                raise EmbeddingExplorerError(f"render has {len(spec)} texts for {n_samples} samples")
            self._texts, self.kind = spec, TEXT
        elif not callable(spec):
            raise TypeError(
                f"render must be a str, ImageRender, list of texts or callable, not {type(spec).__name__}"
            )

    def describe(self) -> str:
        """A stable text form for fingerprints."""
        if isinstance(self.spec, ImageRender):
            return repr(self.spec)
        if self._originals is not None:
            return f"originals:{type(self._originals).__qualname__}:{self._originals.content_fingerprint()}"
        if self._texts is not None:  # the texts themselves: other texts are another run
            digest = hashlib.blake2b(digest_size=16)
            for text in self._texts:
                encoded = str(text).encode()
                digest.update(len(encoded).to_bytes(8, "little") + encoded)
            return f"texts[{len(self._texts)}]:{digest.hexdigest()}"
        if callable(self.spec):
            name = getattr(self.spec, "__qualname__", type(self.spec).__qualname__)
            return f"callable:{name}:{callable_digest(self.spec)}"  # code, defaults, closure
        return str(self.spec)

    @property
    def max_size(self) -> int:
        """The largest side of a thumbnail, in pixels."""
        return self._image.max_size

    def render(self, batch: Batch) -> list[bytes] | None:
        """Per-sample renderings of ``batch``, or None when samples are not rendered."""
        start, self._seen = self._seen, self._seen + batch.size
        self.last_pixels, self.last_images, self.last_counts, self.last_columns = None, [], None, None
        self.loaded_without_stats = False
        if batch.tokens is not None and self.spec in (None, "text"):
            # a per-token run: each token is shown with its whole text, stored once per text and
            # shared by its tokens (the token itself and its neighbours come from the sample
            # table's text_id, position and token columns)
            self.kind = TEXT
            texts = batch.tokens.texts
            self.last_counts = np.bincount(batch.tokens.rows, minlength=len(texts)).astype(np.int64)
            return [str(t).encode() for t in texts]
        if self._texts is not None:
            if self._seen > len(self._texts):
                raise EmbeddingExplorerError(
                    f"render has {len(self._texts)} texts but the data has more samples"
                )
            return [str(t).encode() for t in self._texts[start : self._seen]]
        if self._originals is not None:
            if self._seen > len(self._originals):
                raise EmbeddingExplorerError(
                    f"render has {len(self._originals)} samples but the data has more"
                )
            source = rendering_source(self._originals, self.max_size)
            if batch.rendered is not None and source and batch.rendered.source == source:
                # rendered where the batch was loaded, from these very originals, at this size
                self.kind = self.kind or batch.rendered.kind
                self.last_columns = batch.rendered.columns
                self.loaded_without_stats = batch.rendered.columns is None
                return list(batch.rendered.items)
            originals = [self._originals.original(i) for i in range(start, self._seen)]
            # images shrunk once: encoded as the thumbnails, and their input statistics' pixels
            shown = [thumbnail(v, self.max_size) if isinstance(v, Image.Image) else v for v in originals]
            self.last_images = [image for image in shown if isinstance(image, Image.Image)]
            return [self._from_value(value) for value in shown]
        if self.spec == "none":
            return None
        x = batch.inputs if batch.shown is None else batch.shown
        if callable(self.spec) and not isinstance(self.spec, ImageRender):
            return [self._from_value(self.spec(_sample(x, i))) for i in range(batch.size)]
        wants_image = self.spec in ("image",) or isinstance(self.spec, ImageRender)
        if self.spec == "text":
            raise EmbeddingExplorerError(
                "render='text' needs the texts: pass render=[text, ...] with one string per sample"
            )
        if isinstance(x, torch.Tensor) and looks_like_images(x):
            return self._images(x)
        if wants_image:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise EmbeddingExplorerError(
                f"render='image' but inputs are {shape}, not (B, C, H, W) or (B, H, W) images"
            )
        return None

    def state(self) -> dict[str, Any]:
        """What rendering has learnt so far (image value range, kind, samples seen), so a resumed
        run or another worker's shard renders exactly as one uninterrupted pass would."""
        return {"range": self._range, "kind": self.kind, "seen": self._seen}

    def restore(self, state: Mapping[str, Any]) -> None:
        self._range = None if state["range"] is None else (float(state["range"][0]), float(state["range"][1]))
        self.kind, self._seen = state["kind"], int(state["seen"])

    def check_count(self, n_samples: int) -> None:
        """Refuse a list of texts longer than the data (a shorter one fails while rendering)."""
        if self._texts is not None and len(self._texts) != n_samples:
            raise EmbeddingExplorerError(f"render has {len(self._texts)} texts for {n_samples} samples")
        if self._originals is not None and len(self._originals) != n_samples:
            raise EmbeddingExplorerError(f"render has {len(self._originals)} samples for {n_samples} samples")

    def _from_value(self, value: Any) -> bytes:
        if isinstance(value, str):
            self.kind = self.kind or TEXT
            return value.encode()
        if isinstance(value, Image.Image):
            self.kind = self.kind or IMAGE
            return image_record(value, self._image.max_size)
        if isinstance(value, AudioClip):
            self.kind = self.kind or AUDIO
            return value.wav
        raise TypeError(
            f"a render callable must return a str, PIL.Image or AudioClip, not {type(value).__name__}"
        )

    def _images(self, x: torch.Tensor) -> list[bytes]:
        self.kind = IMAGE
        pixels = self._pixels(x)
        self.last_pixels = pixels  # at full size: the input statistics' pixels
        if pixels.ndim == 4:  # channels interleaved for the records: stacking the planes is
            # 4x faster than a copy of the moved axis
            pixels = np.stack([pixels[..., 0], pixels[..., 1], pixels[..., 2]], axis=-1)
        if max(pixels.shape[1:3]) > self._image.max_size:  # on torch's threads, as the pixels
            shrink = functools.partial(_shrunk_images, max_size=self._image.max_size)
            parts = by_parts(shrink, pixels, torch.get_num_threads())
            pixels = parts[0] if len(parts) == 1 else np.concatenate(parts)
        # stored raw: PNG encoding (zlib, ~1 ms for 112 x 112 RGB) would cost a quarter of a
        # ResNet-18's forward pass per sample; a reader encodes the few it shows (records.as_png)
        header = raw_header(pixels[0])
        return [header + image.tobytes() for image in pixels]

    def _pixels(self, x: torch.Tensor) -> np.ndarray:
        """A batch of images as 8-bit pixels, ``(B, H, W)`` grey or ``(B, H, W, 3)`` colour: the
        normalisation undone, scaled to 0..255, rounded half to even and clipped. Colour comes
        as a view of one plane per channel (the input statistics read each plane contiguously).

        A block of images at a time (:meth:`_planes`), each step in place after the first (a
        fresh array per step cost more than the arithmetic), shared by torch's threads between
        forward passes (:mod:`.threads`; not torch's own pool: a two-thread torch pass over a
        batch measured 10x slower than one thread whenever another process held a core). Each
        step rounds as before, so the pixels are the same to the byte (``tests/test_render.py``)."""
        arr = x.detach().float().cpu().numpy()
        if arr.ndim == 3:
            arr = arr[:, None]
        if self._image.mean is None and self._image.std is None and self._range is None:
            self._range = _value_range(arr)
        parts = by_parts(self._planes, arr, torch.get_num_threads())
        planes = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return planes if planes.ndim == 3 else np.moveaxis(planes, 1, -1)

    def _planes(self, arr: np.ndarray) -> np.ndarray:
        """Some images' 8-bit pixels (the range known): ``(B, H, W)`` grey, ``(B, 3, H, W)`` colour.

        A block of images at a time (:func:`.threads.images_per_block`): the float temporaries
        of a whole part of a batch (float64 with ``mean``/``std``: 38 MB for 32 images of
        224 x 224) came from fresh pages every batch and outgrew the cache (64 such images,
        measured with blocks of 2^18 pixels, 2^17 within noise of it: 13.2 ms on one thread and
        8.8 ms on two, against 20.6 and 34.4 ms whole)."""
        grey = arr.shape[1] == 1
        out = np.empty((len(arr), *arr.shape[2:]) if grey else (len(arr), 3, *arr.shape[2:]), np.uint8)
        per_block = images_per_block(arr.shape[2], arr.shape[3])
        for start in range(0, len(arr), per_block):
            scaled = self._scaled(arr[start : start + per_block])
            np.rint(scaled, out=scaled)
            np.clip(scaled, 0, 255, out=scaled)
            np.copyto(
                out[start : start + per_block], scaled[:, 0] if grey else scaled[:, :3], casting="unsafe"
            )
        return out

    def _scaled(self, arr: np.ndarray) -> np.ndarray:
        """Images mapped to [0, 1] consistently across the data set, times 255, as a new array
        (``arr`` may be the caller's tensor): float64 when ``mean``/``std`` are given, else
        float32 by the first batch's range. Images already in [0, 1] are only multiplied, the
        same values as subtracting 0 and dividing by 1 first (both exact), a third of the passes."""
        spec = self._image
        if spec.mean is not None or spec.std is not None:
            channels = arr.shape[1]
            given = {
                "mean": spec.mean if spec.mean is not None else 0.0,
                "std": spec.std if spec.std is not None else 1.0,
            }
            for name, value in given.items():
                if np.size(value) not in (1, channels):
                    raise EmbeddingExplorerError(
                        f"render=ImageRender({name}={value!r}) has {np.size(value)} values for images of "
                        f"{channels} channel{'s' if channels != 1 else ''}: give one value or one per channel"
                    )
            mean = np.broadcast_to(np.asarray(given["mean"], float).reshape(-1), (channels,))
            std = np.broadcast_to(np.asarray(given["std"], float).reshape(-1), (channels,))
            out = arr * std[None, :, None, None]
            out += mean[None, :, None, None]
            out *= 255.0
            return out
        assert self._range is not None  # set from the first batch by _pixels
        lo, hi = self._range
        if (lo, hi) == (0.0, 1.0):
            return np.multiply(arr, np.float32(255.0))
        out = np.subtract(arr, lo)
        out /= hi - lo
        out *= 255.0
        return out


def _value_range(arr: np.ndarray) -> tuple[float, float]:
    """The range that maps a data set's images to [0, 1], from its first batch's finite values
    (a NaN pixel would make every later image's pixels 0): [0, 1] or [0, 255] when the values
    lie there, else the 0.5 and 99.5 percentiles; [0, 1] where none is finite."""
    finite = np.isfinite(arr)
    if not finite.all():
        arr = arr[finite]
        if arr.size == 0:
            return (0.0, 1.0)
    lo, hi = float(arr.min()), float(arr.max())
    if lo >= 0 and hi <= 1:
        return (0.0, 1.0)
    if lo >= 0 and hi <= 255 and hi > 1:
        return (0.0, 255.0)
    lo, hi = (float(v) for v in np.percentile(arr, [0.5, 99.5]))
    return (lo, hi if hi > lo else lo + 1.0)


def _sample(inputs: Any, i: int) -> Any:
    """Sample ``i`` of a batch's inputs: a row of a tensor, or a dict of rows for dict batches."""
    if isinstance(inputs, Mapping):
        return {k: v[i] if isinstance(v, torch.Tensor) and v.ndim > 0 else v for k, v in inputs.items()}
    return inputs[i]


def looks_like_images(x: torch.Tensor) -> bool:
    """``(B, C, H, W)`` with 1, 3 or 4 channels, or ``(B, H, W)``, with sides of 8 px or more."""
    if x.ndim == 4:
        return x.shape[1] in (1, 3, 4) and min(x.shape[2:]) >= 8
    if x.ndim == 3:
        return min(x.shape[1:]) >= 8 and x.dtype not in (torch.int32, torch.int64)
    return False


def _shrunk_images(images: np.ndarray, max_size: int) -> np.ndarray:
    """Each of a batch's uint8 images :func:`_shrunk` (PIL lets go of the GIL while it resizes,
    so parts of a batch shrink side by side)."""
    return np.stack([_shrunk(image, max_size) for image in images])


def _shrunk(pixels: np.ndarray, max_size: int) -> np.ndarray:
    """A uint8 image scaled down (Lanczos) so its longer side is ``max_size``."""
    image = Image.fromarray(pixels)
    image.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    return np.asarray(image)


def thumbnail(image: Image.Image, max_size: int) -> Image.Image:
    """``image`` as the UI shows it: at most ``max_size`` pixels a side (Lanczos), else itself."""
    if max(image.size) > max_size:
        image = image.copy()
        image.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    return image


def rendering_source(originals: Any, max_size: int) -> str:
    """What renderings made away from the renderer (:class:`~.batches.Rendered`) must have been
    made from for it to take them: these originals (their ``render_token``, drawn when they were
    made, so a copy in a loader's worker process has it too) at this size; "" for originals
    without one, which are always rendered by the renderer itself."""
    token = getattr(originals, "render_token", None)
    return f"{token}:{max_size}" if isinstance(token, str) else ""


def image_record(image: Image.Image, max_size: int) -> bytes:
    """An image's rendering (an image file's original, a render callable's image): its
    :func:`thumbnail`, grey or RGB stored as raw pixels (:func:`.records.raw_header`; a reader
    encodes the few it shows as PNG: encoding each here cost 2.8 ms of a 128 x 96 photo, more than
    decoding the 500 x 375 JPEG), other modes (alpha, palette, 16-bit) as PNG."""
    image = thumbnail(image, max_size)
    if image.mode in ("L", "RGB"):
        pixels = np.asarray(image)
        return raw_header(pixels) + pixels.tobytes()
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
