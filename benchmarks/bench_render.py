"""Rendering one batch of images, the CPU-side work beside a GPU's forward pass.

A batch of ``--batch`` normalised ``--side`` x ``--side`` RGB images (ImageNet mean and std, as a
torchvision loader gives them) through :class:`embedding_explorer.render.Renderer`: the 8-bit
pixels (the normalisation undone) and the thumbnails (Lanczos, at most 128 px a side), then the
input statistics of those pixels (as extraction records them), on one torch thread and on all of
them (the renderer shares a batch with torch's threads). Best of ``--repeats``; never asserts.

    .venv/bin/python benchmarks/bench_render.py [--batch 64] [--side 224] [--repeats 7]
"""

from __future__ import annotations

import argparse

import torch
from ab import best_seconds

from embedding_explorer.batches import Batch
from embedding_explorer.extract import input_columns
from embedding_explorer.render import ImageRender, Renderer

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def best_render_seconds(x: torch.Tensor, threads: int, repeats: int, stats: bool) -> float:
    """The best seconds of rendering ``x`` (then, with ``stats``, its input statistics)."""
    torch.set_num_threads(threads)
    renderer = Renderer(ImageRender(*IMAGENET), None)
    batch = Batch(inputs=x, size=len(x), labels=None, attention_mask=None)

    def work() -> None:
        rendered = renderer.render(batch)
        if stats:
            input_columns(batch, renderer, rendered)

    work()  # warm: the pool's threads, the scratch arrays
    return best_seconds(work, repeats)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    threads = torch.get_num_threads()
    x = torch.randn(args.batch, 3, args.side, args.side, generator=torch.Generator().manual_seed(0))
    for stats in (False, True):
        one = best_render_seconds(x, 1, args.repeats, stats)
        shared = best_render_seconds(x, threads, args.repeats, stats)
        what = "pixels, 128 px thumbnails" + (", input statistics" if stats else "")
        print(f"render {args.batch} normalised {args.side} x {args.side} images ({what})")
        print(f"  one thread       {one * 1e3:7.1f} ms  {args.batch / one:7.0f} images/s")
        rate = args.batch / shared
        print(f"  {threads} threads{'':7s} {shared * 1e3:7.1f} ms  {rate:7.0f} images/s  {one / shared:.2f}x")


if __name__ == "__main__":
    main()
