"""The run directory: how a run is laid out on disk, written, committed and read back.

:mod:`.format` names the files and reads manifests, :mod:`.writer` builds and commits a run,
:mod:`.reader` reads a finished one.

::

    RUN/
      manifest.json        written last, atomically: the commit marker of a finished run
      arrays.zarr/         Zarr v3: activations/<key> (N, D), scores/<key> (N, k), pca/<key>/...
      samples.parquet      sample_id, label, metadata columns
      renderings.bin       per-sample thumbnails (PNG) or texts, packed end to end
      renderings.idx.npy   int64 offsets (N + 1) into renderings.bin

A local run is built in a hidden staging folder beside ``RUN`` and moved into place only when
its manifest is written, so an interrupted extraction never leaves a folder that opens as
finished. Object stores have no atomic rename (and copying the arrays would cost a second
upload), so a run at any other fsspec URL is written in place under its prefix, marked
``.partial.json`` while it is unfinished, with ``manifest.json`` written last as the commit
marker; its renderings go to one object per checkpoint segment (``renderings.<i>.bin``, listed
in the manifest), because objects cannot be appended to.
"""
