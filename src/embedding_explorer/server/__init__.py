"""The explorer's web server: a JSON + binary API over finished runs, and the web UI.

The modules, from the app down (imports flow downward only; the server sits above the run and
the analyses, which never import it: ``run.show()`` reaches :func:`show` through
:mod:`embedding_explorer.views`):

- ``launch``: ``serve`` (uvicorn, tokens); ``notebook``: ``show`` (Colab, Jupyter's proxy, a
  local IFrame or the URL to forward); ``prefix``: serving under a path prefix; ``app``: ``create_app``.
- routes, one router each of module-level handlers: ``routes`` (runs, probing, samples),
  ``analysis_routes``, ``basis_routes`` (bases, directions), ``dataset_routes``, ``export_routes``.
- shared by the routes: ``params`` (path and query parameters, the state as dependencies),
  ``answers`` (binary bodies, ETags, JSON numbers, the compute-once cache), ``errors``
  (``NotFoundError`` -> 404, the library's value errors -> 422), ``schemas`` (the JSON answers).
- state: ``registry`` (the served runs), ``bases`` (PCA, ICA or a direction as one probe),
  ``directions`` (ids that make their directions again), ``recipes`` (what they are made of),
  ``columns`` (labels and metadata encoded for the browser).
- around it: ``auth`` (the token), ``static`` (the built UI).

>>> import embedding_explorer as ee
>>> from embedding_explorer.server import serve
>>> serve([ee.open_run("runs/resnet18")])          # doctest: +SKIP
"""

from __future__ import annotations

from .app import create_app
from .launch import ServerHandle, serve
from .notebook import show

__all__ = ["ServerHandle", "create_app", "serve", "show"]
