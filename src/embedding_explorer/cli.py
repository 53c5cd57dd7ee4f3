"""The ``embedding-explorer`` command: explore specs, inspect runs, serve the UI, build the demo."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import checks
from .cores import available_cores
from .exceptions import EmbeddingExplorerError
from .run import Run, open_run

DEMO_GLOSSES = 10_000  # the text demo's stratified subset (demos.wordnet_minilm.DEFAULT_SUBSET)
DEMO_TOKEN_GLOSSES = 2_000  # the per-token run's glosses (demos.wordnet_tokens.DEFAULT_GLOSSES)


def run_summary(run: Run) -> dict[str, Any]:
    """What ``info --json`` prints: the run's size and each layer's variance per component."""
    return {
        "name": run.name,
        "path": run.url,
        "n_samples": run.n_samples,
        "model": run.manifest["model"]["class"],
        "labels": run.labels is not None,
        "layers": [
            {
                "name": layer.name,
                "dim": layer.dim,
                "n_components": layer.n_components,
                "pca_method": layer.pca_method,
                "explained_variance_ratio": [round(float(r), 6) for r in layer.explained_variance_ratio],
            }
            for layer in run
        ],
        "timings": run.manifest.get("timings", {}),
    }


def format_info(run: Run) -> str:
    """A human-readable table of the run's layers and their top components."""
    lines = [f"{run.name}: {run.n_samples:,} samples, model {run.manifest['model']['class']}", ""]
    width = max(len(name) for name in run.layers)
    for layer in run:
        ratios = layer.explained_variance_ratio
        top = "  ".join(f"{100 * r:5.1f}%" for r in ratios[:10])
        method = "" if layer.pca_method == "covariance_eigh" else f"  [{layer.pca_method}]"
        lines.append(
            f"  {layer.name:<{width}}  D={layer.dim:<6} cum {100 * ratios.sum():5.1f}%  PCs: {top}{method}"
        )
    return "\n".join(lines)


def format_insights(table: Any) -> str:
    """The findings as a table of strength, kind and sentence (one line each)."""
    if table.empty:
        return "no findings above the documented thresholds (see embedding_explorer.analysis.insights)"
    width = max(len(str(k)) for k in table["kind"])
    lines = [f"strength  {'kind':<{width}}  finding"]
    for row in table.itertuples(index=False):
        lines.append(f"  {row.strength:6.2f}  {row.kind:<{width}}  {row.sentence}")
    return "\n".join(lines)


def _insights(args: argparse.Namespace) -> int:
    run = open_run(args.run_dir)
    table = run.insights(compare=[open_run(path) for path in args.compare])
    if args.json:
        records = table.astype(object).where(table.notna(), None).to_dict(orient="records")
        print(json.dumps(records, indent=2, default=str))
    else:
        print(format_insights(table))
    return 0


def _info(args: argparse.Namespace) -> int:
    run = open_run(args.run_dir)
    print(json.dumps(run_summary(run), indent=2) if args.json else format_info(run))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .server import serve

    runs = [open_run(path) for path in args.run_dirs]
    serve(
        runs,
        host=args.host,
        port=args.port,
        token=args.token,
        no_token=args.no_token,
        open_browser=not args.no_browser,
        hosts=args.allow_host,
        frame_ancestors=args.frame_ancestor,
        max_body=args.max_body,
        root_path=args.root_path,
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demos.runner import build_demo_runs, describe_demo

    runs = []
    if not args.text:
        runs += build_demo_runs(
            Path(args.out), limit=args.limit, progress=not args.quiet, datasets=not args.no_datasets
        )
    token_runs = []
    if not args.image:
        from .demos.wordnet_minilm import build_text_run
        from .demos.wordnet_tokens import build_token_run, describe_token_run

        n = None if args.all_glosses else args.glosses
        if args.reduce in (None, "mean"):
            runs.append(build_text_run(Path(args.out), n=n, progress=not args.quiet))
        if args.reduce in (None, "tokens"):
            token_runs.append(build_token_run(Path(args.out), n=args.token_glosses, progress=not args.quiet))
    if runs:
        print(describe_demo(runs))
        print()
    for run in token_runs:
        print(describe_token_run(run))
        print()
    runs += token_runs
    if args.no_serve:
        return 0
    from .server import serve

    serve(runs, host=args.host, port=args.port, open_browser=not args.no_browser)
    return 0


def _explore(args: argparse.Namespace) -> int:
    from .specs.command import explore_specs, split_layers

    specs = {"--model": args.model, "--data": args.data, "--layers": args.layers}
    if args.vectors is not None:
        given = [flag for flag, value in specs.items() if value is not None]
        given += [flag for flag, dest, default in MODEL_DATA_OPTIONS if getattr(args, dest) != default]
        if given:
            raise EmbeddingExplorerError(
                f"--vectors builds a run from stored vectors: drop {', '.join(given)} "
                "(for a model over data, not for vectors)"
            )
        return _summarise(run_vectors(args), args)
    if args.vector_column is not None:
        raise EmbeddingExplorerError("--vector-column is for --vectors PATH: drop it")
    missing = [flag for flag, value in specs.items() if value is None]
    if missing:
        raise EmbeddingExplorerError(
            f"explore needs {', '.join(missing)} (or --vectors PATH for activations you already have)"
        )
    run = explore_specs(
        args.model,
        args.data,
        split_layers(args.layers),
        out=args.out,
        text_column=args.text_column,
        image_column=args.image_column,
        label_column=args.label_column,
        split=args.split,
        limit=args.limit,
        n_components=args.n_components,
        batch_size=64 if args.batch_size is None else args.batch_size,
        device=args.device,
        dtype=args.dtype or "float32",
        reduce=args.reduce,
        pretrained=not args.no_pretrained,
        weights=args.weights,
        progress=not args.quiet,
        wait=args.wait,
        name=args.name,
        workers=loader_workers(args.workers, args.device),
    )
    return _summarise(run, args)


# explore's options for a model over data, none of which --vectors reads: (flag, dest, default)
MODEL_DATA_OPTIONS = (
    ("--text-column", "text_column", None),
    ("--image-column", "image_column", None),
    ("--labels", "label_column", None),
    ("--split", "split", None),
    ("--limit", "limit", None),
    ("--device", "device", None),
    ("--workers", "workers", None),
    ("--dtype", "dtype", None),
    ("--reduce", "reduce", None),
    ("--no-pretrained", "no_pretrained", False),
    ("--weights", "weights", None),
)


def loader_workers(workers: int | None, device: str | None) -> int:
    """``--workers``, or by default: on a GPU one process per core but one (at most 8) decodes the
    image files, where decoding in the main process would hold back the forward pass; on the
    CPU none, as the forward pass uses every core."""
    if workers is not None:
        return workers
    if device is None or not device.startswith("cuda"):
        return 0
    return max(0, min(8, available_cores() - 1))


def _summarise(run: Run, args: argparse.Namespace) -> int:
    """Print the run's summary and where it is; serve it with ``--serve``."""
    print(format_info(run))
    print(f"\nsaved to {run.path}")
    if args.serve:
        from .server import serve

        serve([run], host=args.host, port=args.port, open_browser=not args.no_browser)
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_run

    run = open_run(args.run_dir)
    files = export_run(run, args.to, formats=args.format, n=args.n)
    print(f"wrote {len(files)} files for {len(run.layers)} layers of {run.name!r} to {args.to}")
    return 0


def _report(args: argparse.Namespace) -> int:
    run = open_run(args.run_dir)
    path = run.report(args.output, n=args.n)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): open it in a browser")
    return 0


def load_example(args: argparse.Namespace, model: Any) -> Any:
    """The example data a ``--data`` spec names for ``layers``: a ``.npy`` or ``.pt`` tensor
    file, or any data spec ``explore`` takes (read for ``model``: its tokenizer or image
    preprocessing); only its first batch runs."""
    spec = args.data
    if spec is None:
        return None
    if Path(spec).suffix in (".npy", ".pt", ".pth"):
        from .userfiles import tensor_from_file

        return tensor_from_file(spec)
    from .specs import load_data

    return load_data(
        spec, model, text_column=args.text_column, image_column=args.image_column, batch_size=2
    ).data


def _layers(args: argparse.Namespace) -> int:
    from .layers import format_layers, list_layers
    from .specs import load_model

    model = load_model(args.model, pretrained=not args.no_pretrained, weights=args.weights)
    example = load_example(args, model)
    infos = list_layers(model.module, example, device=args.device, match=args.match)
    print(format_layers(infos, tree=args.match is None))
    if example is None:
        print("\n(no --data: output shapes, calls and reductions need one batch of data)")
    return 0


def add_vector_column(parser: argparse.ArgumentParser) -> None:
    """``--vector-column``, shared by ``vectors`` and (with ``--vectors PATH``) ``explore``."""
    parser.add_argument(
        "--vector-column",
        metavar="NAME[,NAME]",
        help="the Parquet list column(s) (or .npz/.npy array names) that hold vectors; default: all",
    )


def run_vectors(args: argparse.Namespace) -> Run:
    """The run ``--vectors`` builds (``ee.from_arrays``): what ``explore --vectors`` calls."""
    from .vectors import vectors_from_path

    found = vectors_from_path(args.vectors, args.vector_column)
    name = args.name or Path(args.vectors).stem or "vectors"
    out = args.out or str(Path("runs") / name)
    return found.explore(
        out=out,
        name=name,
        n_components=args.n_components,
        batch_size=4096 if args.batch_size is None else args.batch_size,
        progress=not args.quiet,
        wait=getattr(args, "wait", False),
        model=getattr(args, "model_name", None),
    )


def _vectors(args: argparse.Namespace) -> int:
    return _summarise(run_vectors(args), args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="embedding-explorer",
        description="See what the layers of a PyTorch model have learned: exact per-layer PCA in a web UI.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="layers, N, dims and variance per component of a run")
    info.add_argument("run_dir", help="a run folder or fsspec URL")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(handler=_info)

    serve = sub.add_parser("serve", help="serve the explorer UI for one or more runs")
    serve.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders or fsspec URLs")
    _add_server_options(serve)
    serve.add_argument(
        "--token", default=None, help="access token (default: generated for a non-loopback host)"
    )
    serve.add_argument("--no-token", action="store_true", help="allow a non-loopback host without a token")
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host header name to answer besides loopback and --host (repeatable; e.g. a proxy's)",
    )
    serve.add_argument(
        "--frame-ancestor",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="an origin that may embed the UI besides a local notebook (repeatable; e.g. a JupyterHub's)",
    )
    serve.add_argument(
        "--max-body",
        type=int,
        default=2**20,
        metavar="BYTES",
        help="refuse larger request bodies with 413 (default: 1048576)",
    )
    serve.add_argument(
        "--root-path",
        default="",
        metavar="PREFIX",
        help="the path prefix a reverse proxy serves the UI under (e.g. /tools/explorer)",
    )
    serve.set_defaults(handler=_serve)

    demo = sub.add_parser(
        "demo",
        help="explore a Fashion-MNIST CNN and MiniLM on WordNet glosses, serve the UI",
        description="Image runs (a trained and an untrained Fashion-MNIST CNN; the trained one also over "
        "inverted test images and Animal-MNIST, with their joint PCA; the test images in input space) "
        "and a text run (all-MiniLM-L6-v2 over WordNet glosses, labelled by lexicographer category), "
        "served together.",
    )
    demo.add_argument("--out", default="runs/demo", help="folder for the demo runs (default: runs/demo)")
    which = demo.add_mutually_exclusive_group()
    which.add_argument("--image", action="store_true", help="only the image runs")
    which.add_argument("--text", action="store_true", help="only the text run")
    demo.add_argument("--limit", type=int, default=None, help="use only the first N test images")
    demo.add_argument(
        "--all-glosses",
        action="store_true",
        help="every WordNet gloss (about 118k) instead of a stratified subset of 10k",
    )
    demo.add_argument("--glosses", type=int, default=DEMO_GLOSSES, help=argparse.SUPPRESS)  # tests
    demo.add_argument(
        "--reduce",
        choices=["mean", "tokens"],
        default=None,
        help="only the text run with one vector per gloss (mean) or the per-token run over 2,000 "
        "glosses (tokens); default: both",
    )
    demo.add_argument("--token-glosses", type=int, default=DEMO_TOKEN_GLOSSES, help=argparse.SUPPRESS)
    demo.add_argument(
        "--no-datasets",
        action="store_true",
        help="skip the data-set comparison runs (inverted test images, Animal-MNIST, joint, input space)",
    )
    demo.add_argument("--no-serve", action="store_true", help="build the runs and print the summary only")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_server_options(demo)
    demo.set_defaults(handler=_demo)

    _add_explore_parser(sub)

    export = sub.add_parser(
        "export", help="write each layer's scores, extremes, associations and variance as Parquet/CSV"
    )
    export.add_argument("run_dir", help="a run folder or fsspec URL")
    export.add_argument("--to", type=Path, required=True, help="target folder (other files in it stay)")
    export.add_argument("--format", choices=["parquet", "csv", "both"], default="both", help="default: both")
    export.add_argument("--n", type=int, default=8, help="samples per end of each component (default: 8)")
    export.set_defaults(handler=_export)

    found = sub.add_parser("insights", help="print a run's findings, strongest first (run.insights())")
    found.add_argument("run_dir", help="a run folder or fsspec URL")
    found.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="RUN",
        help="a run of the same model over other data, or of another model over the same samples "
        "(repeatable)",
    )
    found.add_argument("--json", action="store_true", help="print the findings as JSON records")
    found.set_defaults(handler=_insights)

    report = sub.add_parser("report", help="write a self-contained HTML report of a run (no server needed)")
    report.add_argument("run_dir", help="a run folder or fsspec URL")
    report.add_argument("-o", "--output", type=Path, default=Path("report.html"), help="default: report.html")
    report.add_argument("--n", type=int, default=8, help="thumbnails per end of each component (default: 8)")
    report.set_defaults(handler=_report)

    layers = sub.add_parser(
        "layers",
        help="every named module of a model: type, output shape on one batch, calls, default reduction",
        description="Which layers? Lists every module name that --layers / layers= accepts, with its "
        "output on the first rows of --data and what the default reducer makes of it. Runs of identical "
        "blocks are folded into one line unless --match is given.",
    )
    layers.add_argument(
        "--model",
        required=True,
        metavar="SPEC",
        help="hf:<id or dir>, st:<id or dir>, timm:<name>, torchvision:<name> or path/to/file.py:factory",
    )
    layers.add_argument(
        "--data",
        metavar="SPEC",
        help="example data: a .npy or .pt tensor file, or any data spec explore takes (its first batch)",
    )
    layers.add_argument("--text-column", default=None, help="table column of texts (default: text)")
    layers.add_argument("--image-column", default=None, help="table column of image paths (default: image)")
    layers.add_argument(
        "--no-pretrained", action="store_true", help="random weights (timm:, torchvision:, hf:)"
    )
    layers.add_argument("--weights", default=None, metavar="FILE", help="a state_dict to load into the model")
    layers.add_argument("--match", metavar="PATTERN", help="only names matching a glob or regex")
    layers.add_argument("--device", default=None, help="default: the model's own device")
    layers.set_defaults(handler=_layers)

    vectors = sub.add_parser(
        "vectors",
        help="a run from activations you already have (Parquet, .npz, a folder of .npy): PCA, scores, UI",
        description="Exact PCA per layer over vectors captured elsewhere (TransformerLens or nnsight caches, "
        "SAE features, an embedding API's output), read in row blocks. A 'label'/'labels' column gives "
        "the labels; other scalar columns are kept as metadata.",
    )
    vectors.add_argument(
        "vectors", metavar="PATH", help="a .parquet file, an .npz file or a folder of .npy files"
    )
    add_vector_column(vectors)
    vectors.add_argument("--out", default=None, help="run folder (default: runs/<name>)")
    vectors.add_argument("--name", default=None, help="run name (default: the file's name)")
    vectors.add_argument(
        "--model-name",
        default=None,
        help="the model the vectors came from (e.g. gpt2@resid_5): runs naming the same one compare "
        "as one model over two data sets",
    )
    vectors.add_argument("--n-components", type=int, default=10, help="default: 10")
    vectors.add_argument(
        "--batch-size", type=_positive, default=4096, help="rows read at a time (default: 4096)"
    )
    vectors.add_argument("--serve", action="store_true", help="open the UI on the run")
    vectors.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_server_options(vectors)
    vectors.set_defaults(handler=_vectors)
    return parser


def _add_explore_parser(sub: Any) -> None:
    explore = sub.add_parser(
        "explore",
        help="explore a model (hf:, st:, timm:, torchvision:, file.py:factory) over a folder or table",
        description="Load a model and a data set from their specs, capture the layers, fit exact PCA, "
        "print the summary and (with --serve) open the UI. Example: embedding-explorer explore "
        "--model timm:resnet18 --data photos/ --layers layer3 --serve",
    )
    explore.add_argument(
        "--model",
        metavar="SPEC",
        help="hf:<id or dir>, st:<id or dir>, timm:<name>, torchvision:<name> or path/to/file.py:factory",
    )
    explore.add_argument(
        "--data",
        metavar="SPEC",
        help="a folder of images (class subfolders = labels), a .csv/.parquet/.jsonl table, a "
        "save_to_disk folder, or hf:<dataset id>",
    )
    explore.add_argument("--layers", metavar="L1,L2", help="module names, comma-separated")
    explore.add_argument(
        "--vectors",
        metavar="PATH",
        help="instead of --model/--data/--layers: activations you already have (a .parquet file, an "
        ".npz file or a folder of .npy files), one layer per vector column or array",
    )
    add_vector_column(explore)
    explore.add_argument(
        "--name",
        default=None,
        help="run name (default: <model>-<data>[-<split>][-n<limit>], or the file's name)",
    )
    explore.add_argument("--out", default=None, help="run folder (default: runs/<name>)")
    explore.add_argument("--serve", action="store_true", help="serve the UI when the run is built")
    explore.add_argument("--text-column", default=None, help="table column of texts (default: text)")
    explore.add_argument(
        "--image-column", default=None, help="table column of image paths or images (default: image)"
    )
    explore.add_argument(
        "--labels", "--label-column", dest="label_column", default=None, help="label column (default: label)"
    )
    explore.add_argument("--split", default=None, help="split of a Hugging Face data set (default: train)")
    explore.add_argument(
        "--limit", type=int, default=None, help="keep N samples: stratified by label, else the first N"
    )
    explore.add_argument("--n-components", type=int, default=10, help="default: 10")
    explore.add_argument(
        "--batch-size",
        type=_positive,
        default=None,
        help="default: 64 (4096 rows read at a time with --vectors)",
    )
    explore.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cpu)")
    explore.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes that decode image files (default: on a GPU one per core but one, at most 8; "
        "on the CPU none: the forward pass has the cores)",
    )
    explore.add_argument(
        "--dtype", default=None, help="float32, bfloat16 or float16 (forward pass; default: float32)"
    )
    explore.add_argument("--reduce", default=None, help="mean, first, last, max, flatten (default: by rank)")
    explore.add_argument(
        "--no-pretrained", action="store_true", help="random weights (timm:, torchvision:, hf:)"
    )
    explore.add_argument(
        "--weights", default=None, metavar="FILE", help="a state_dict to load into the model"
    )
    explore.add_argument("--quiet", action="store_true", help="no progress bars")
    explore.add_argument(
        "--wait",
        nargs="?",
        type=float,
        const=True,
        default=False,
        metavar="SECONDS",
        help="another process writing --out holds its lock: wait for it (or that many seconds) "
        "instead of stopping with an error naming it",
    )
    _add_server_options(explore)
    explore.set_defaults(handler=_explore)


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8031, help="port (default: 8031; 0: any free port)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")


def _port(text: str) -> int:
    """``--port`` as an int in 0..65535: argparse reports anything else as a usage error."""
    try:
        return checks.port(int(text), "--port")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e) if "between" in str(e) else f"{text!r} is not a port") from e


def _positive(text: str) -> int:
    """A count such as ``--batch-size``: a positive integer, else argparse's usage error (which
    names the flag)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be a positive integer (1 or more)")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except BrokenPipeError:  # the reader went away (`... | head -1`): stop quietly, as a pipe does
        # no second error when Python flushes stdout at exit (unless stdout is no file: captured)
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (EmbeddingExplorerError, ValueError, OSError) as e:  # the user's to fix: no traceback
        print(f"embedding-explorer: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
