"""Data specs: a folder or file name becomes data ``explore`` reads, with labels and renderings.

Which loader reads a spec is decided by a registry of :class:`DataKind` (first match wins):
``hf:<id>`` (a Hugging Face hub data set), a ``datasets.save_to_disk`` folder, a CSV / Parquet /
JSONL table, a folder of images, and a folder of audio files (:mod:`.audio`). Another kind plugs
in with :func:`register_data_kind`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import SpecError
from ..fingerprint import transform_identity
from ..render import RenderSpec
from ..subsets import stratified_subset
from ..text import TextBatches
from .images import (
    IMAGE_SUFFIXES,
    ImageFiles,
    decoded_once,
    default_transform,
    find_images,
    rgb_or_grey,
)
from .models import LoadedModel, first_line

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson")


@dataclass(frozen=True)
class DataOptions:
    """How a spec's samples are read (the ``--text-column`` ... options of the command)."""

    text_column: str | None = None
    image_column: str | None = None
    label_column: str | None = None
    limit: int | None = None
    split: str | None = None
    batch_size: int = 64
    max_length: int = 128


@dataclass
class LoadedData:
    """Data read from a spec: ``data`` for :func:`~embedding_explorer.explore` (labels inside it)
    and the arguments that go with it (:meth:`explore_kwargs`)."""

    data: Any
    spec: str
    kind: str
    n_samples: int
    label_names: list[str] | None = None
    metadata: pd.DataFrame | None = None
    render: RenderSpec = None
    workers: int = 0  # loader processes that decode image files (0: the main process)

    @property
    def name(self) -> str:
        """A short name for runs: the folder's or file's stem, or the hub id's last part."""
        body = self.spec.split(":", 1)[1] if self.spec.startswith("hf:") else self.spec
        return Path(body.rstrip("/")).stem or "data"

    def explore_kwargs(self) -> dict[str, Any]:
        """``metadata``, ``render`` and ``label_names`` for ``explore``."""
        return {"metadata": self.metadata, "render": self.render, "label_names": self.label_names}

    def batches(self, batch_size: int, *, input_stats: bool = True) -> Any:
        """What ``explore`` iterates: image files through :func:`~.images.decoded_once` (each file
        decoded once, for the model and its thumbnail, in ``workers`` processes; the thumbnails'
        input statistics taken there with ``input_stats``), else ``data``."""
        if isinstance(self.data, ImageFiles) and type(self.data).__getitem__ is ImageFiles.__getitem__:
            return decoded_once(self.data, batch_size, self.workers, input_stats=input_stats)
        return self.data  # (a subclass reading its items its own way is read as it reads them)


Loader = Callable[[str, "LoadedModel | None", DataOptions], LoadedData]


@dataclass(frozen=True)
class DataKind:
    """One way to read a data spec: ``detect(spec)`` says whether it applies, ``load`` reads it.

    ``folder_contents`` names what a folder of this kind holds (e.g. ``"images (.png, ...)"``),
    so the error for a folder no kind reads lists every kind of folder there is. ``options``
    names the :class:`DataOptions` fields its loader reads (None: all of them): a column or split
    given for a kind that reads none is refused, naming the option and ``described`` (what the
    data is), rather than ignored.
    """

    name: str
    detect: Callable[[str], bool]
    load: Loader
    folder_contents: str | None = None
    options: frozenset[str] | None = None
    described: str | None = None


# the options a kind may not read, as the command's flags (limit, batch size and length always apply)
OPTION_FLAGS = {
    "text_column": "--text-column",
    "image_column": "--image-column",
    "label_column": "--labels",
    "split": "--split",
}
FOLDER_OPTIONS = frozenset({"limit", "batch_size", "max_length"})  # class subfolders are the labels
TABLE_OPTIONS = FOLDER_OPTIONS | {"text_column", "image_column", "label_column"}


def check_options(kind: DataKind, spec: str, options: DataOptions) -> None:
    """Refuse the options ``kind`` does not read (:attr:`DataKind.options`), naming them."""
    if kind.options is None:
        return
    ignored = [
        flag
        for field, flag in OPTION_FLAGS.items()
        if getattr(options, field) is not None and field not in kind.options
    ]
    if ignored:
        what = kind.described or f"{kind.name} data"
        raise SpecError(
            f"data {spec!r} is {what}: {', '.join(ignored)} "
            f"{'does not apply to it; drop it' if len(ignored) == 1 else 'do not apply to it; drop them'}"
        )


DATA_KINDS: list[DataKind] = []


def register_data_kind(kind: DataKind, *, first: bool = False) -> None:
    """Add a way to read data specs (``first``: before the built-in kinds); a kind with the
    same name is replaced."""
    DATA_KINDS[:] = [k for k in DATA_KINDS if k.name != kind.name]
    DATA_KINDS.insert(0, kind) if first else DATA_KINDS.append(kind)


def load_data(
    spec: str | Path,
    model: LoadedModel | None = None,
    *,
    text_column: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    limit: int | None = None,
    split: str | None = None,
    batch_size: int = 64,
    max_length: int = 128,
    workers: int = 0,
) -> LoadedData:
    """Read a data spec for ``model`` (its tokenizer for texts, its preprocessing for images).

    Parameters
    ----------
    spec : str or Path
        A folder of images (class subfolders become labels; images directly in it have none);
        a ``.csv``/``.tsv``/``.parquet``/``.jsonl`` table; a ``datasets.save_to_disk`` folder;
        ``hf:<id>`` for a data set on the Hugging Face hub (where the network allows).
    model : LoadedModel, optional
        From :func:`load_model`. Needed for texts (its tokenizer); images without it, or whose
        model spec knows no preprocessing, use :func:`default_transform`.
    text_column, image_column : str, optional
        The table column holding the texts, or the image paths (relative to the table's folder)
        or images; default: ``text``, else ``image``, when the table has such a column.
    label_column : str, optional
        The column of labels; default: ``label`` when present. Other columns become metadata.
    limit : int, optional
        Keep N samples: a stratified subset when there are labels, else the first N.
    split : str, optional
        The split of a Hugging Face data set (default: ``train``, or its only split).
    workers : int, default=0
        Loader processes that decode image files, each once for the model and for its thumbnail
        (0: the main process): where the forward pass is fast (a GPU), decoding in the main process
        is the limit (:meth:`LoadedData.batches`).
    """
    options = DataOptions(text_column, image_column, label_column, limit, split, batch_size, max_length)
    if limit is not None and (not isinstance(limit, int) or limit < 2):
        raise SpecError(f"--limit {limit!r}: keep at least 2 samples (PCA needs 2)")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise SpecError(f"--workers {workers!r}: give a number of loader processes, 0 or more")
    text = str(spec)
    for kind in DATA_KINDS:
        if kind.detect(text):
            check_options(kind, text, options)
            loaded = kind.load(text, model, options)
            loaded.workers = workers
            return loaded
    path = Path(text)
    if not path.exists():
        raise SpecError(f"data {text!r}: no such file or folder")
    if path.is_dir():
        contents = " or ".join(k.folder_contents for k in DATA_KINDS if k.folder_contents)
        raise SpecError(f"data folder {text!r} has no samples: no {contents} in it or its subfolders")
    raise SpecError(
        f"data file {text!r}: unknown type {path.suffix!r}; use a folder, {', '.join(TABLE_SUFFIXES)} "
        "or a save_to_disk folder"
    )


# ---- images in folders ---------------------------------------------------------------------------
def _is_image_folder(spec: str) -> bool:
    path = Path(spec)
    return path.is_dir() and bool(find_images(path))


def class_folders(
    spec: str, paths: list[Path], what: str, limit: int | None
) -> tuple[list[Path], np.ndarray | None, list[str] | None]:
    """The files of a data folder, their labels and class names: class subfolders become labels
    (sorted names), files directly in the folder have none; a folder with both is refused (its
    loose files would have no class). ``limit`` keeps a stratified subset (:func:`subset`)."""
    folder = Path(spec)
    nested = [p for p in paths if p.parent != folder]
    if nested and len(nested) != len(paths):
        loose = next(p for p in paths if p.parent == folder)
        raise SpecError(
            f"data folder {spec!r} has class subfolders and {what} outside them (e.g. {loose.name}); "
            "move them into a class folder"
        )
    classes = sorted({p.parent.name for p in nested}) if nested else None
    labels = np.asarray([classes.index(p.parent.name) for p in paths]) if classes else None
    keep = subset(labels, len(paths), limit)
    return [paths[i] for i in keep], (labels[keep] if labels is not None else None), classes


def _load_image_folder(spec: str, model: LoadedModel | None, options: DataOptions) -> LoadedData:
    """Class subfolders become labels (sorted names); images directly in the folder have none.
    A folder with both is refused: its loose images would have no class."""
    folder = Path(spec)
    paths, labels, classes = class_folders(spec, find_images(folder), "images", options.limit)
    dataset = ImageFiles(paths, _image_transform(model), labels=labels, classes=classes)
    table = pd.DataFrame({"file": [str(p.relative_to(folder)) for p in paths]})
    return LoadedData(dataset, spec, "images", len(paths), classes, table, dataset)


# ---- tables --------------------------------------------------------------------------------------
def _is_table(spec: str) -> bool:
    return Path(spec).suffix.lower() in TABLE_SUFFIXES and not spec.startswith("hf:")


def _load_table(spec: str, model: LoadedModel | None, options: DataOptions) -> LoadedData:
    path = Path(spec)
    if not path.is_file():
        raise SpecError(f"data {spec!r}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            table = pd.read_parquet(path)
        elif suffix in (".jsonl", ".ndjson"):
            table = pd.read_json(path, lines=True)
        else:
            table = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except (ValueError, OSError, ImportError) as e:
        raise SpecError(f"data {spec!r} cannot be read as a {suffix} table: {first_line(e)}") from e
    return from_table(table, spec, model, options, base=path.parent)


def from_table(
    table: pd.DataFrame,
    spec: str,
    model: LoadedModel | None,
    options: DataOptions,
    *,
    base: Path | None = None,
    label_names: Sequence[str] | None = None,
    images: Callable[[np.ndarray], ImageFiles] | None = None,
) -> LoadedData:
    """Samples from a table's text or image column, labels from its label column, every other
    storable column as metadata. ``images(rows)`` builds the images of an image column that
    holds images rather than paths (a Hugging Face ``Image`` feature)."""
    columns = [str(c) for c in table.columns]
    for option, column in (
        ("--text-column", options.text_column),
        ("--image-column", options.image_column),
        ("--label-column", options.label_column),
    ):
        if column is not None and column not in columns and not (images and column == options.image_column):
            raise SpecError(
                f"{option} {column!r} is not a column of {spec}; its columns: {', '.join(columns)}"
            )
    text_column, image_column = options.text_column, options.image_column
    if text_column is None and image_column is None:
        if "text" in columns:
            text_column = "text"
        elif "image" in columns or images is not None:
            image_column = "image"
        else:
            raise SpecError(
                f"data {spec}: say which column holds the samples with --text-column or --image-column; "
                f"its columns: {', '.join(columns)}"
            )
    label_column = options.label_column or ("label" if "label" in columns else None)
    labels, names = _encode_labels(table[label_column], label_names) if label_column else (None, None)
    keep = subset(labels, len(table), options.limit)
    labels = labels[keep] if labels is not None else None
    rows = table.iloc[keep].reset_index(drop=True)
    used = {text_column, image_column, label_column}
    metadata = _storable(rows[[c for c in rows.columns if c not in used]])
    if text_column is not None:
        if model is None:
            raise SpecError(f"data {spec}: texts need a model with a tokenizer (hf: or st:)")
        _check_texts(rows[text_column], keep, spec)
        texts = rows[text_column].astype(str).tolist()
        batches = TextBatches(
            texts,
            model.tokenizer(),
            batch_size=options.batch_size,
            max_length=options.max_length,
            labels=labels,
        )
        return LoadedData(batches, spec, "texts", len(texts), names, metadata, texts)
    assert image_column is not None
    if images is not None:
        dataset = images(keep)
        dataset.labels, dataset.classes = labels, names
    else:
        dataset = ImageFiles(
            _image_paths(rows[image_column], spec, base or Path(".")),
            _image_transform(model),
            labels=labels,
            classes=names,
        )
    return LoadedData(dataset, spec, "images", len(dataset), names, metadata, dataset)


def _check_texts(column: pd.Series, rows: np.ndarray, spec: str) -> None:
    """Refuse empty or missing texts (each would be embedded as if it were a text), naming the
    column, how many and the first rows (``rows``: the table rows of ``column``'s values)."""
    empty = np.flatnonzero((column.isna() | (column.astype(str).str.strip() == "")).to_numpy())
    if len(empty):
        first = ", ".join(str(rows[i]) for i in empty[:5]) + (", ..." if len(empty) > 5 else "")
        raise SpecError(
            f"data {spec}: the text column {column.name!r} has {len(empty)} empty or missing "
            f"value(s), in row(s) {first}; drop or fill those rows"
        )


def _image_paths(column: pd.Series, spec: str, base: Path) -> list[Path]:
    paths = []
    for row, value in enumerate(column.tolist()):
        path = Path(str(value)).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise SpecError(f"data {spec}: row {row} names the image {value!r}, but there is no file {path}")
        paths.append(path)
    return paths


def _encode_labels(column: pd.Series, names: Sequence[str] | None) -> tuple[np.ndarray, list[str] | None]:
    """Integer labels with their names: strings become codes of their sorted values."""
    values = column.to_numpy()
    if column.isna().any():
        raise SpecError(f"the label column {column.name!r} has {int(column.isna().sum())} empty values")
    if np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.bool_):
        return values.astype(np.int64), list(names) if names is not None else None
    if np.issubdtype(values.dtype, np.floating):
        return values, None
    strings = column.astype(str)
    classes = sorted(set(strings))
    return np.searchsorted(np.asarray(classes), strings.to_numpy()).astype(np.int64), classes


def _storable(table: pd.DataFrame) -> pd.DataFrame | None:
    """The columns the sample table can keep: numbers, booleans and strings."""
    keep = []
    for column in table.columns:
        series = table[column]
        kind = series.dtype.kind
        if kind in "biuf" or (kind in "OSUT" and series.dropna().map(type).isin([str]).all()):
            keep.append(column)
    return table[keep].reset_index(drop=True) if keep else None


# ---- Hugging Face data sets ----------------------------------------------------------------------
def _is_saved_dataset(spec: str) -> bool:
    path = Path(spec)
    markers = ("dataset_info.json", "state.json", "dataset_dict.json")
    return path.is_dir() and any((path / m).is_file() for m in markers)


def _load_saved_dataset(spec: str, model: LoadedModel | None, options: DataOptions) -> LoadedData:
    datasets = _import_datasets(spec)
    try:
        loaded = datasets.load_from_disk(spec)
    except (OSError, ValueError, FileNotFoundError) as e:
        raise SpecError(f"data {spec!r} is not a saved data set: {first_line(e)}") from e
    return _from_hf(loaded, spec, model, options)


def _is_hub_dataset(spec: str) -> bool:
    return spec.startswith("hf:")


def _load_hub_dataset(spec: str, model: LoadedModel | None, options: DataOptions) -> LoadedData:
    datasets = _import_datasets(spec)
    try:
        loaded = datasets.load_dataset(spec[3:], split=options.split)
    except Exception as e:  # network, unknown id, missing split: the hub's own message
        raise SpecError(f"data {spec!r} cannot be loaded from the hub: {first_line(e)}") from e
    return _from_hf(loaded, spec, model, options)


def _from_hf(loaded: Any, spec: str, model: LoadedModel | None, options: DataOptions) -> LoadedData:
    """One split of a ``Dataset``/``DatasetDict`` as a table; ``ClassLabel`` names become label
    names and an ``Image`` column is decoded sample by sample."""
    if hasattr(loaded, "keys") and not hasattr(loaded, "features"):  # a DatasetDict
        splits = list(loaded.keys())
        split = options.split or ("train" if "train" in splits else splits[0] if len(splits) == 1 else None)
        if split not in splits:
            raise SpecError(f"data {spec!r}: choose a split with --split; its splits: {', '.join(splits)}")
        loaded = loaded[split]
    features = loaded.features
    image_column = options.image_column or ("image" if "image" in features else None)
    is_image = image_column in features and type(features[image_column]).__name__ == "Image"
    if options.image_column is None and (options.text_column is not None or "text" in features):
        image_column, is_image = None, False
    table = loaded.remove_columns([image_column]).to_pandas() if is_image else loaded.to_pandas()
    if not len(table.columns):  # the image column alone: a table of no columns keeps no rows
        table = pd.DataFrame(index=pd.RangeIndex(len(loaded)))
    label_column = options.label_column or ("label" if "label" in features else None)
    feature = features.get(label_column) if label_column else None
    names = list(feature.names) if feature is not None and type(feature).__name__ == "ClassLabel" else None

    def images(rows: np.ndarray) -> ImageFiles:
        return DatasetImages(loaded, str(image_column), rows, _image_transform(model), spec)

    return from_table(
        table,
        spec,
        model,
        DataOptions(
            options.text_column, image_column, options.label_column, options.limit, options.split,
            options.batch_size, options.max_length,
        ),
        label_names=names,
        images=images if is_image else None,
    )  # fmt: skip


class DatasetImages(ImageFiles):
    """The ``Image`` column of a Hugging Face data set (rows ``rows``), as :class:`ImageFiles`."""

    def __init__(self, dataset: Any, column: str, rows: np.ndarray, transform: Any, spec: str) -> None:
        super().__init__([], transform)
        self.dataset, self.column, self.rows, self.spec = dataset, column, np.asarray(rows), spec

    def __len__(self) -> int:
        return len(self.rows)

    def describe(self, index: int) -> str:
        return f"data {self.spec}: the image in row {int(self.rows[index])} (sample {index})"

    def original(self, index: int) -> Any:
        image = self.dataset[int(self.rows[index])][self.column]
        if image is None:
            raise SpecError(
                f"data {self.spec}: row {int(self.rows[index])} has no image in column {self.column!r} "
                "(it is missing); drop or fill that row"
            )
        return rgb_or_grey(image, self.describe(index))

    def content_fingerprint(self) -> str:
        fingerprint = getattr(self.dataset, "_fingerprint", "")
        labels = "" if self.labels is None else self.labels.tobytes().hex()
        rows = self.rows.tobytes().hex()
        return f"{self.spec}|{fingerprint}|{self.column}|{rows}|{labels}|{transform_identity(self.transform)}"


def _import_datasets(spec: str) -> Any:
    try:
        import datasets
    except ImportError as e:
        raise SpecError(f"data {spec!r} needs datasets: pip install 'embedding-explorer[hf]'") from e
    return datasets


# ---- shared --------------------------------------------------------------------------------------
def subset(labels: np.ndarray | None, n: int, limit: int | None) -> np.ndarray:
    """Rows to keep: all, the first ``limit``, or a stratified subset of ``limit`` by label."""
    if limit is None or limit >= n:
        return np.arange(n)
    if labels is None or labels.dtype.kind == "f":
        return np.arange(limit)
    return stratified_subset(labels, limit)


def _image_transform(model: LoadedModel | None) -> Any:
    if model is not None and model.image_transform is not None:
        return model.image_transform
    return default_transform()


register_data_kind(DataKind("hf-hub", _is_hub_dataset, _load_hub_dataset))
register_data_kind(DataKind("hf-saved", _is_saved_dataset, _load_saved_dataset))
register_data_kind(
    DataKind("table", _is_table, _load_table, None, TABLE_OPTIONS, "a table (it has no splits)")
)
register_data_kind(
    DataKind(
        "images",
        _is_image_folder,
        _load_image_folder,
        f"images ({', '.join(IMAGE_SUFFIXES)})",
        FOLDER_OPTIONS,
        "a folder of images (class subfolders are its labels)",
    )
)

__all__ = ["DATA_KINDS", "DataKind", "DataOptions", "LoadedData", "load_data", "register_data_kind"]
