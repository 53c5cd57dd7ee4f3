"""Image files as a Dataset: decoded, preprocessed for the model, shown as the original image.

The model sees each image through its own preprocessing (a transform from the model spec) or,
when the spec knows none, :func:`default_transform`: the shorter side resized to 224 pixels,
the centre 224 x 224 cropped, RGB scaled to [0, 1] and normalised with the ImageNet mean and
standard deviation. Thumbnails come from the original file (see :class:`~..render.Originals`).
"""

from __future__ import annotations

import inspect
import multiprocessing
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, default_collate, get_worker_info

from ..batches import LoadFailure, Rendered, RenderedBatch
from ..cores import available_cores
from ..exceptions import SpecError
from ..fingerprint import files_digest, transform_identity
from ..inputstats import original_image_statistics
from ..records import IMAGE
from ..render import ImageRender, image_record, rendering_source, thumbnail
from ..threads import each_by_parts

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
DEFAULT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ImageTransform = Callable[[Image.Image], torch.Tensor]


class DefaultTransform:
    """Resize the shorter side to ``size`` (bilinear), crop the centre ``size`` x ``size``, scale
    RGB to [0, 1] and normalise with the ImageNet mean and std: ``(3, size, size)`` float32."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size

    def __call__(self, image: Image.Image) -> torch.Tensor:
        image = image.convert("RGB")
        width, height = image.size
        scale = self.size / min(width, height)
        resized = image.resize(
            (max(self.size, round(width * scale)), max(self.size, round(height * scale))),
            Image.Resampling.BILINEAR,
        )
        left = (resized.width - self.size) // 2
        top = (resized.height - self.size) // 2
        cropped = resized.crop((left, top, left + self.size, top + self.size))
        pixels = np.asarray(cropped, dtype=np.float32) / np.float32(255.0)
        mean, std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)
        return torch.from_numpy(np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1)))

    def __repr__(self) -> str:
        return f"DefaultTransform(size={self.size})"


def default_transform(size: int = DEFAULT_SIZE) -> ImageTransform:
    """The preprocessing used when the model spec knows none (see the module docstring)."""
    return DefaultTransform(size)


class HFTransform:
    """A Hugging Face image processor as a PIL image -> ``(C, H, W)`` tensor transform."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def __call__(self, image: Image.Image) -> torch.Tensor:
        pixels = self.processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"]
        return torch.as_tensor(pixels[0])

    def __repr__(self) -> str:
        return f"HFTransform({self.processor.to_json_string()})"


def hf_transform(processor: Any) -> ImageTransform:
    return HFTransform(processor)


def find_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` and one level of subfolders, sorted by path; hidden
    files and subfolders (``.thumbs``) are skipped."""
    return sorted(
        p for p in folder_files(folder) if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def folder_files(folder: Path) -> list[Path]:
    """Files directly in ``folder`` and in its subfolders that are not hidden (``.thumbs``,
    ``.ipynb_checkpoints``: a hidden folder is no class)."""
    subfolders = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
    return [p for p in (*folder.iterdir(), *(q for d in subfolders for q in d.iterdir())) if p.is_file()]


def as_8bit(image: Image.Image, what: str) -> Image.Image:
    """``image`` with 8-bit channels: 16-bit greyscale (``I;16``, or ``I`` holding 0..65535, as a
    16-bit PNG may open) divided by 257, but an ``I`` or ``F`` image whose values lie in 0..255
    kept as it is (8-bit values in a deep file), floats (``F``) in [0, 1] multiplied by 255; any
    other ``I`` or ``F`` image is refused, naming ``what`` (``convert("RGB")`` would clip it to
    white)."""
    if image.mode not in ("I", "F") and not image.mode.startswith("I;16"):
        return image
    pixels = np.asarray(image)
    if image.mode.startswith("I;16"):
        scaled = pixels.astype(np.float32) / np.float32(257.0)
    else:
        low, high = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 0.0)
        finite = bool(np.isfinite(pixels).all())
        if image.mode == "F" and finite and low >= 0 and high <= 1:
            scaled = pixels.astype(np.float32) * np.float32(255.0)
        elif finite and low >= 0 and high <= 255:  # 8-bit values in a 32-bit or float file
            scaled = pixels.astype(np.float32)
        elif image.mode == "I" and low >= 0 and high <= 65535:
            scaled = pixels.astype(np.float32) / np.float32(257.0)
        else:
            kind = "32-bit integer" if image.mode == "I" else "floating-point"
            expected = "0..65535 (16-bit)" if image.mode == "I" else "0..1 or 0..255"
            raise SpecError(
                f"{what} is a {kind} image (PIL mode {image.mode}) with values {low:g}..{high:g}, "
                f"outside {expected}: scale it to 8 or 16 bits first (only those are read)"
            )
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def rgb_or_grey(image: Image.Image, what: str) -> Image.Image:
    """``image`` as 8-bit greyscale (L) or RGB: deeper greyscale scaled to 8 bits first
    (:func:`as_8bit`), any other mode converted to RGB."""
    image = as_8bit(image, what)
    return image.convert("RGB") if image.mode not in ("RGB", "L") else image


def transform_name(transform: Any) -> str:
    """A transform as errors name it: a function by its name and file, else its class."""
    if inspect.isfunction(transform) or inspect.ismethod(transform):
        try:
            source = inspect.getsourcefile(transform)
        except TypeError:
            source = None
        return f"{transform.__qualname__}()" + (f" in {source}" if source else "")
    return type(transform).__name__


class ImageFiles(Dataset[Any]):
    """Image files preprocessed by ``transform``: items are ``(image, label)``, or the image alone
    when there are no labels; ``original(i)`` is the decoded file, for thumbnails.

    ``classes`` names integer labels (``explore`` takes them as label names).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        transform: ImageTransform,
        *,
        labels: Sequence[int] | np.ndarray | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.transform = transform
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.classes = list(classes) if classes is not None else None
        self.render_token = uuid.uuid4().hex  # what renderings made from them carry (rendering_source)

    def __len__(self) -> int:
        return len(self.paths)

    def describe(self, index: int) -> str:
        """Sample ``index`` as errors name it (its file and position)."""
        return f"image {self.paths[index]} (sample {index})"

    def original(self, index: int) -> Image.Image:
        """The decoded file, turned as its EXIF orientation says, in 8-bit L or RGB."""
        path = self.paths[index]
        try:
            with Image.open(path) as opened:
                opened.load()
                image = ImageOps.exif_transpose(opened)  # a copy: the file is closed after
        except Image.DecompressionBombError as e:
            raise SpecError(
                f"{self.describe(index)} is too large to decode safely: {str(e).rstrip('.')}; if you "
                f"trust it, raise PIL.Image.MAX_IMAGE_PIXELS (now {Image.MAX_IMAGE_PIXELS}) in your "
                "model file, or shrink the image"
            ) from e
        except (UnidentifiedImageError, OSError) as e:
            reason = str(e).replace(f"'{path}'", "").strip() or type(e).__name__
            raise SpecError(f"{self.describe(index)} cannot be read: {reason}") from e
        return rgb_or_grey(image, self.describe(index))

    def transformed(self, image: Image.Image, index: int) -> Any:
        """``transform(image)``, or an error naming the sample and the transform where it raises
        or returns what the loader cannot batch (a PIL image: the tensor step was left out)."""
        try:
            x = self.transform(image)
        except Exception as e:
            raise SpecError(
                f"{self.describe(index)}: the preprocessing {transform_name(self.transform)} failed: "
                f"{type(e).__name__}: {e}"
            ) from e
        if not isinstance(x, (torch.Tensor, np.ndarray, Mapping)):
            raise SpecError(
                f"{self.describe(index)}: the preprocessing {transform_name(self.transform)} returned "
                f"{type(x).__name__}, not a tensor; end it with a tensor, e.g. "
                "torchvision.transforms.functional.to_tensor(image)"
            )
        return x

    def __getitem__(self, index: int) -> Any:
        x = self.transformed(self.original(index), index)
        if self.labels is None:
            return x
        return x, int(self.labels[index])

    def content_fingerprint(self) -> str:
        """The files (path, size, modification time), labels and the transform's settings."""
        return files_digest(transform_identity(self.transform), self.paths, self.labels)


class DecodedOnce(Dataset["tuple[Any, Image.Image] | LoadFailure"]):
    """The samples of ``files`` with their thumbnails: each file decoded once, for the model (the
    item ``files[i]`` is) and for its thumbnail (at most ``max_size`` a side), wherever the loader
    reads it: in its worker processes with ``num_workers``, instead of the main process reading
    every file again for its thumbnail. Batched by :class:`RenderingCollate`."""

    def __init__(self, files: ImageFiles, max_size: int) -> None:
        self.files, self.max_size = files, max_size
        self.classes = files.classes  # the label names explore finds on a loader's data set

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Any, Image.Image] | LoadFailure:
        try:
            image = self.files.original(index)
            x = self.files.transformed(image, index)
        except SpecError as error:  # raised as it is in the main process (batches.LoadFailure)
            return LoadFailure(error)
        labels = self.files.labels
        item = x if labels is None else (x, int(labels[index]))
        return item, thumbnail(image, self.max_size)

    def __getitems__(self, indices: list[int]) -> list[tuple[Any, Image.Image] | LoadFailure]:
        """A batch's items, as the DataLoader reads them: read side by side on this process's
        cores where the loader reads in the main process (PIL decodes and resizes without the
        GIL, and between two forward passes torch leaves the cores idle); one after another in
        a loader's worker process or a daemonic one (a Dask worker), which share the cores with
        others of their kind."""
        alone = get_worker_info() is None and not multiprocessing.current_process().daemon
        workers = available_cores() if alone else 1
        return each_by_parts(self.__getitem__, indices, workers)

    def content_fingerprint(self) -> str:
        """The files' identity (:meth:`ImageFiles.content_fingerprint`) and the thumbnails' size."""
        return f"decoded-once:{self.max_size}:{self.files.content_fingerprint()}"


class RenderingCollate:
    """Batches :class:`DecodedOnce` items as a :class:`~..batches.RenderedBatch`: the items as
    torch's ``default_collate`` batches ``files[i]``, and each thumbnail rendered as the renderer
    renders an image file's original (:func:`~..render.image_record`), with the input
    statistics of the batch's thumbnails (with ``input_stats``: a run without them takes none).
    Runs where the loader batches: in its worker processes where it has them, off the main
    process."""

    def __init__(self, max_size: int, source: str, input_stats: bool = True) -> None:
        self.max_size, self.source, self.input_stats = max_size, source, input_stats

    def __call__(self, items: Sequence[tuple[Any, Image.Image] | LoadFailure]) -> RenderedBatch | LoadFailure:
        pairs = []
        for item in items:
            if isinstance(item, LoadFailure):
                return item
            pairs.append(item)
        shown = [thumb for _, thumb in pairs]
        records = [image_record(image, self.max_size) for image in shown]
        columns = original_image_statistics(shown) if self.input_stats else None
        rendered = Rendered(IMAGE, records, columns, self.source)
        return RenderedBatch(default_collate([item for item, _ in pairs]), rendered)

    def content_fingerprint(self) -> str:
        """What its batches hold, for :func:`~..fingerprint.data_fingerprint` (no edge batch read)."""
        return f"rendering-collate:{self.max_size}"


def decoded_once(
    files: ImageFiles, batch_size: int, workers: int = 0, *, input_stats: bool = True
) -> DataLoader[Any]:
    """A loader of ``files`` that decodes each file once, for the model and its thumbnail, in
    ``workers`` processes (0: in this one), in order, with the thumbnails' input statistics
    (``input_stats``, as explore's option); pass ``files`` itself as ``render=``."""
    max_size = ImageRender().max_size  # the renderer's thumbnails for an image file's originals
    return DataLoader(
        DecodedOnce(files, max_size),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=RenderingCollate(max_size, rendering_source(files, max_size), input_stats),
    )
