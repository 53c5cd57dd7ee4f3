"""``explore``: capture layers over a data set, fit exact PCA per layer, and save the run.

Three stages, each its own function: :func:`~.build.plan.plan_explore` checks the arguments
and computes the run's keys (a finished run with the same key is reused), extraction streams
the data through the model into the run's store (in this process, :mod:`.extract`, or on a
Dask cluster, :mod:`.distributed`; a stopped run resumes from its last checkpoint, :mod:`.resume`),
and :func:`~.build.finish.finish` fits the PCA, writes the scores and commits the run.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch

from . import resume
from .arrays import ArraySource, reduced_rows
from .build.finish import finish
from .build.plan import MAX_DENSE_DIM, ExplorePlan, plan_explore
from .build.results import Scorer
from .exceptions import EmbeddingExplorerError
from .extract import Ledger, extract_stream, stream_rows
from .extras import require
from .locations import Location, StorageOptions
from .models import ModelSpec
from .outputs import OutputsSpec
from .reducers import ReduceSpec
from .render import RenderSpec
from .run import Run
from .specs.inputs import is_spec, resolve
from .store.lock import run_lock
from .store.writer import RunWriter

if TYPE_CHECKING:
    from distributed import Client

    from .specs import LoadedModel

log = logging.getLogger(__name__)


def explore(
    model: ModelSpec | str | LoadedModel,
    data: Any,
    layers: Sequence[str] | Mapping[str, str] | str,
    *,
    out: str | Path | None = None,
    name: str | None = None,
    n_components: int = 10,
    batch_size: int = 256,
    labels: Sequence[Any] | np.ndarray | None = None,
    metadata: pd.DataFrame | Mapping[str, Sequence[Any]] | None = None,
    reduce: ReduceSpec | Mapping[str, ReduceSpec] = None,
    render: RenderSpec = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    label_names: Sequence[str] | None = None,
    recompute: bool = False,
    max_dense_dim: int = MAX_DENSE_DIM,
    storage_dtype: Literal["float32", "float16"] = "float32",
    client: Client | None = None,
    storage_options: StorageOptions | None = None,
    wait: bool | float = False,
    dtype: Literal["bfloat16", "float16", "float32"] | None = None,
    input_stats: bool = True,
    outputs: OutputsSpec = "auto",
) -> Run:
    """Capture ``layers`` of ``model`` over ``data``, run exact PCA per layer, save and open the run.

    Parameters
    ----------
    model : torch.nn.Module, a zero-argument function returning one, a model spec, or None
        None captures only ``"input"`` (PCA in data space). With a function (e.g.
        ``ee.from_state_dict(MyNet, "weights.pt")``) each Dask worker builds its own copy; a
        module is sent to them pickled. A spec string (``"timm:resnet18"``, ``"hf:<dir>"``,
        ``"net.py:build"``...) or :func:`~embedding_explorer.load_model`'s result is loaded
        and brings its preprocessing for ``data`` given as a spec.
    data : Tensor, ndarray, Dataset, DataLoader (not shuffling), iterable of batches, or a data spec
        Batches are tensors, ``(x, y)`` pairs or dicts of keyword arguments (``model(**batch)``).
        A folder of images, a table file or a saved data set (a str or Path), or
        :func:`~embedding_explorer.load_data`'s result, also gives ``metadata``, ``render`` and
        ``label_names`` where those are None.
    layers : str or list of str
        Names from ``model.named_modules()``; ``"input"`` is the model input; ``"name:i"`` keeps
        call ``i`` of a module that runs several times per forward pass. A dict
        ``{shown name: module path}`` gives long paths short names (used everywhere after).
    out : path, or any fsspec URL (``file://``, ``s3://``, ``gs://``...), optional
        Run directory; default ``./runs/<name>``. A finished run there with the same model, data
        and options is reused as it is; anything else is recomputed and replaced. An unfinished
        run with the same arguments resumes from its last checkpoint. Local folders are built
        beside ``out`` and renamed into place; other URLs are written in place, the manifest
        last (see :mod:`embedding_explorer.store`).
    n_components : int, default=10
        Capped at ``min(N - 1, D)`` per layer.
    labels : sequence, optional
        One per sample; default: the ``y`` of ``(x, y)`` batches (or a ``labels`` key).
    metadata : DataFrame or dict of columns, optional
        One row per sample, kept in the run's sample table.
    reduce : str, callable, Reducer, or {layer: spec}, optional
        How outputs become one vector per sample (see :mod:`embedding_explorer.reducers`).
    render : "image", "text", "none", ImageRender, list of texts, or callable, optional
        How samples are shown; default: images when inputs look like images.
    device : optional
        Default: the model's device (CPU for a model on the CPU).
    label_names : list of str, optional
        Names of integer labels; default: the Dataset's ``classes`` attribute when it has one.
    recompute : bool, default=False
        Recompute even if a matching finished (or stopped) run exists.
    max_dense_dim : int, default=8192
        Layers wider than this use randomized SVD (recorded in the manifest).
    storage_dtype : {"float32", "float16"}, default="float32"
        How activations are stored. Statistics accumulate in float64 from the rows before the
        cast, except the components and variances of layers wider than ``max_dense_dim``
        (randomized SVD reads the stored rows back); scores are computed from the stored rows.
        A value beyond float16's range is an error naming the layer and the sample.
    client : distributed.Client, optional
        Run on a Dask cluster: workers extract shards of sample ids (over text batches, of
        whole batches of texts), write their slices of the store and return mergeable
        accumulators and what they recorded (see :mod:`embedding_explorer.distributed`).
    storage_options : dict, optional
        fsspec options for an ``out`` URL (credentials, endpoint...), sent to Dask workers too.
        Often unneeded: fsspec also reads the usual environment variables and config files.
    wait : bool or float, default=False
        One process writes a run at a time (a lock beside ``out``, see
        :mod:`embedding_explorer.store.lock`). When another process is writing ``out``: False
        raises :class:`~embedding_explorer.RunLockedError` naming it; True waits until it is done
        (then its run is reused when it was made by the same call); a number waits up to that
        many seconds.
    dtype : {"bfloat16", "float16", "float32"}, optional
        The forward pass's dtype: floating inputs are cast to it, and a model whose weights are in
        another dtype runs under ``torch.autocast`` (its weights are not changed; to save memory,
        load the model in that dtype). Statistics still accumulate in float64. Default: the
        model's own dtype.
    input_stats : bool, default=True
        Record low-level statistics of each input as metadata columns: ``brightness``,
        ``contrast``, ``edge_density`` for images (and ``saturation``, ``red_green``,
        ``blue_yellow`` for colour ones) as rendered; ``n_tokens``, ``n_words`` for texts
        (defined in :mod:`embedding_explorer.inputstats`).
    outputs : "auto", "classification", None or callable, default="auto"
        Record what the model predicted as columns ``predicted``, ``confidence``, ``entropy``
        and, with labels, ``loss`` and ``correct``: "auto" when the model outputs ``(B, C)``
        class scores, "classification" insists, a callable maps the output to the scores
        (see :mod:`embedding_explorer.outputs`).

    Returns
    -------
    Run
    """
    started = time.perf_counter()
    if is_spec(model, data):  # "timm:resnet18", "photos/", ee.load_model(...), ee.load_data(...)
        given = {"metadata": metadata, "render": render, "label_names": label_names}
        model, data, reduce, given = resolve(
            model, data, layers, reduce, given, batch_size, input_stats=input_stats
        )
        metadata, render, label_names = given["metadata"], given["render"], given["label_names"]
    plan = plan_explore(
        model,  # type: ignore[arg-type]  # a module or factory once specs are resolved
        data,
        layers,
        out=out,
        name=name,
        n_components=n_components,
        batch_size=batch_size,
        labels=labels,
        metadata=metadata,
        reduce=reduce,
        render=render,
        device=device,
        progress=progress,
        label_names=label_names,
        recompute=recompute,
        max_dense_dim=max_dense_dim,
        storage_dtype=storage_dtype,
        client=client,
        storage_options=storage_options,
        dtype=dtype,
        input_stats=input_stats,
        outputs=outputs,
    )
    with run_lock(plan.out, wait=wait):
        finished = plan.finished_run()
        if finished is not None:
            log.info("reusing the finished run at %s", finished)
            return Run(finished)
        build_run(plan, started)
        return Run(plan.out)  # under the lock: a writer waiting for it cannot replace the run first


def build_run(plan: ExplorePlan, started: float) -> None:
    """Extract, finish and commit the run (under its lock); a stop leaves it resumable."""
    writer, ledger, checkpoint = _start(plan)
    resumed_at = checkpoint.n_done if checkpoint is not None else 0
    try:
        seconds, scorer = _extract(plan, writer, ledger, checkpoint)
        finish(plan, writer, ledger, extract_s=seconds, started=started, resumed_at=resumed_at, scorer=scorer)
    except BaseException as error:
        resumable = not isinstance(error, EmbeddingExplorerError) and resume.has_checkpoint(plan.out)
        if resumable:
            # disk full, killed worker, Ctrl-C...: what is checkpointed stays for the next call
            writer.close()
            log.warning("extraction stopped; the next call with the same arguments resumes it")
        else:
            writer.abort()
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            error.add_note(
                f"the disk holding out={plan.out.url!r} is full; nothing was committed. Free space "
                "and call explore again with the same arguments: it "
                + ("resumes from its last checkpoint" if resumable else "starts over")
            )
        raise
    _remove_checkpoints(plan.out)


def _start(plan: ExplorePlan) -> tuple[RunWriter, Ledger, resume.Checkpoint | None]:
    """The run's writer and ledger: fresh, or those of the checkpoint this call resumes."""
    checkpoint = None
    if plan.resume_key is not None and not plan.recompute:
        checkpoint = resume.load(resume.folder_of(plan.out), plan.resume_key)
    names, dtype = plan.names, plan.storage_dtype
    writer = RunWriter(plan.out, names, storage_dtype=dtype, resume=checkpoint is not None)
    if checkpoint is not None and not writer.can_resume(
        checkpoint.dims, checkpoint.n_done, checkpoint.render_bytes
    ):
        log.warning("the checkpoint at %s does not match its files; starting over", plan.out)
        checkpoint = None
        writer = RunWriter(plan.out, names, storage_dtype=dtype)
    if checkpoint is None:
        return writer, Ledger(plan.n_components, plan.max_dense_dim), None
    log.info("resuming the run at %s after %d samples", plan.out, checkpoint.n_done)
    plan.renderer.restore(checkpoint.renderer)
    ledger = Ledger.resumed(checkpoint, plan.n_components, plan.max_dense_dim, resume.folder_of(plan.out))
    return writer, ledger, checkpoint


def _extract(
    plan: ExplorePlan, writer: RunWriter, ledger: Ledger, checkpoint: resume.Checkpoint | None
) -> tuple[float, Scorer | None]:
    """Stream the data into ``writer`` and ``ledger`` (from the checkpoint on, if any).

    Returns the seconds it took and, on a cluster, the scorer that computes scores on the
    workers (None: in this process)."""
    if checkpoint is not None:
        writer.layout(ledger.dims, int(ledger.rows_per_chunk or 0))
        writer.restore(
            checkpoint.n_done, checkpoint.render_bytes, checkpoint.render_sizes, checkpoint.render_counts
        )
    opts = plan.extract_options()
    if isinstance(plan.data, ArraySource):  # ee.from_arrays: rows read, not computed
        start, source = time.perf_counter(), plan.data
        batches = source.batches(plan.batch_size, start=ledger.n_done)
        stream_rows(
            batches, lambda batch: reduced_rows(batch, plan.reducers), opts, writer, ledger, plan.resume_key
        )
        return time.perf_counter() - start, None
    if plan.client is None:
        seconds = extract_stream(plan.model, plan.data, opts, writer, plan.device, ledger, plan.resume_key)
        return seconds, None
    require("distributed", "dask", "explore(client=...)")
    from .distributed import Cluster

    cluster = Cluster(plan.client, plan.spec, plan.model, plan.data, opts, writer, plan.device)
    return cluster.extract(ledger, plan.resume_key), cluster.write_scores


def _remove_checkpoints(out: Location) -> None:
    """Remove a committed run's checkpoints (moved into it with the staging folder); a failure
    leaves only a stray folder, which readers ignore."""
    try:
        resume.committed_folder(out).remove_tree()
    except OSError as error:
        log.warning("could not remove the checkpoints of the finished run at %s: %s", out, error)
