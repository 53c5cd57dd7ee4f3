"""Building runs: every way of making a run writes it through here.

:mod:`.manifest` is the manifest's schema (one :class:`~.manifest.Manifest` and one layer entry
for every builder), :mod:`.results` turns a layer's accumulator into its PCA and its scores,
:mod:`.plan` checks the arguments of :func:`~embedding_explorer.explore` and computes its reuse
key, :mod:`.finish` ends an extraction (PCA, scores, samples, manifest, commit), and
:mod:`.joint` builds one run from two finished runs. Files are written by
:class:`~embedding_explorer.store.writer.RunWriter`; :mod:`~embedding_explorer.analysis` only
reads runs.
"""
