"""The ``embedding-explorer`` command: inspect runs, serve the UI, build the demo."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import checks
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

    export = sub.add_parser(
        "export", help="write each layer's scores, extremes, associations and variance as Parquet/CSV"
    )
    export.add_argument("run_dir", help="a run folder or fsspec URL")
    export.add_argument("--to", type=Path, required=True, help="target folder (other files in it stay)")
    export.add_argument("--format", choices=["parquet", "csv", "both"], default="both", help="default: both")
    export.add_argument("--n", type=int, default=8, help="samples per end of each component (default: 8)")
    export.set_defaults(handler=_export)

    report = sub.add_parser("report", help="write a self-contained HTML report of a run (no server needed)")
    report.add_argument("run_dir", help="a run folder or fsspec URL")
    report.add_argument("-o", "--output", type=Path, default=Path("report.html"), help="default: report.html")
    report.add_argument("--n", type=int, default=8, help="thumbnails per end of each component (default: 8)")
    report.set_defaults(handler=_report)
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (EmbeddingExplorerError, ValueError, OSError) as e:  # the user's to fix: no traceback
        print(f"embedding-explorer: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
