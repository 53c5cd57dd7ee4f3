"""Error and warning types, so callers can catch what they can act on."""

from __future__ import annotations


class EmbeddingExplorerError(ValueError):
    """Base class of the errors this package raises about its inputs and runs."""


class LayerNotFoundError(EmbeddingExplorerError, KeyError):
    """A layer name that the model (or the run) does not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataOrderError(EmbeddingExplorerError):
    """The data would not come in a stable order (e.g. a shuffling DataLoader)."""


class LayerOutputError(EmbeddingExplorerError):
    """A layer's output cannot be turned into one vector per sample."""


class MultipleCallsError(LayerOutputError):
    """A module ran more than once in one forward pass, so its rows would not match samples."""


class NonFiniteActivationError(EmbeddingExplorerError):
    """A layer produced NaN or Inf for some sample."""


class IncompleteRunError(EmbeddingExplorerError):
    """A run directory without a manifest: extraction did not finish."""


class DamagedRunError(EmbeddingExplorerError):
    """A run directory whose files are missing, truncated or inconsistent with its manifest."""


class ManifestError(DamagedRunError):
    """A run's ``manifest.json`` that does not parse or does not follow the schema: the message
    names the file and the field."""


class RunReplacedError(EmbeddingExplorerError):
    """A run opened earlier whose directory was replaced (or deleted) since: its data are no
    longer the data it was opened with; open it again."""


class ZeroVarianceWarning(UserWarning):
    """A layer whose activations are the same for every sample: it has no components."""


class ICAConvergenceWarning(UserWarning):
    """FastICA stopped at its iteration limit: the components it found are not reliable
    (typically the layer's top components are close to Gaussian)."""


class RunLockedError(EmbeddingExplorerError):
    """Another process is writing the same run (``explore(..., wait=True)`` waits for it)."""


class SpecError(EmbeddingExplorerError):
    """A model or data spec (``hf:...``, ``photos/``, ``texts.csv``...) that cannot be loaded:
    an unknown prefix, a missing file or folder, a folder with no samples, a missing column."""


class MissingExtraError(SpecError, ImportError):
    """A spec needs an optional dependency: the message names the pip extra that installs it."""
