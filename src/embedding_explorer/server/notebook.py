"""``show``: the UI inside a notebook, wherever its kernel runs.

A server the kernel starts listens on the kernel's loopback. A browser on that machine (Jupyter
on a laptop, VS Code) reaches it directly; a browser elsewhere (Colab, a JupyterHub, a kernel in a
container or over SSH) does not, and an IFrame of ``http://127.0.0.1:PORT`` stays blank. So
``show`` first asks where it runs (:func:`detect`) and shows the UI the way that place allows:

- ``colab``: Google Colab serves the kernel's port through its own output proxy
  (``google.colab.output.serve_kernel_port_as_iframe``);
- ``proxy``: a Jupyter server (or JupyterHub) with ``jupyter-server-proxy`` forwards
  ``{base_url}proxy/{port}/`` to the port, behind Jupyter's own login; the IFrame points there
  and the app is served under that prefix (:mod:`.prefix`);
- ``local``: an IFrame of ``http://127.0.0.1:PORT/`` (VS Code, a Jupyter server on loopback
  without the proxy, any other kernel);
- ``url``: no IFrame, a message with the URL and the ``ssh -L`` that forwards the port (a
  Jupyter server on another host without the proxy, or no notebook at all).

``show(..., mode=...)`` overrides the detection.
"""

from __future__ import annotations

import getpass
import importlib.util
import json
import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .launch import RunsOrPaths, ServerHandle, is_loopback, load_runs, serve

Mode = Literal["colab", "proxy", "local", "url"]
MODES: tuple[Mode, ...] = ("colab", "proxy", "local", "url")
# Colab shows the kernel's port in an iframe of its output frame (on googleusercontent.com) under
# colab.research.google.com; the proxy's host name is its own (any Host header is answered there:
# no browser runs on Colab's machine to be pointed at its loopback by another site)
COLAB_FRAME_ANCESTORS = (
    "https://colab.research.google.com",
    "https://*.googleusercontent.com",
    "https://*.colab.dev",
)


@dataclass(frozen=True)
class Place:
    """Where the kernel runs, as ``show`` sees it: the ``mode`` to show the UI in, the Jupyter
    server's ``base_url`` (for ``proxy``) and ``why``, what detection found."""

    mode: Mode
    base_url: str = "/"
    why: str = ""


def in_colab(modules: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether this is a Google Colab kernel: ``google.colab`` loaded (Colab's kernel imports it at
    start), or Colab's ``COLAB_RELEASE_TAG`` set where the module can be imported."""
    modules = sys.modules if modules is None else modules
    environ = os.environ if environ is None else environ
    if modules.get("google.colab") is not None:
        return True
    return "COLAB_RELEASE_TAG" in environ and _importable("google.colab")


def in_kernel() -> bool:
    """Whether this code runs in an IPython kernel (a notebook), not a terminal or a script."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if get_ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def in_vscode(environ: Mapping[str, str] | None = None) -> bool:
    """Whether VS Code started this kernel (its notebook views reach the kernel's loopback)."""
    environ = os.environ if environ is None else environ
    return "VSCODE_PID" in environ or "VSCODE_CWD" in environ


def has_proxy() -> bool:
    """Whether ``jupyter-server-proxy`` is installed (a Jupyter server in this environment loads it)."""
    return _importable("jupyter_server_proxy")


def running_servers(runtime_dir: Path | None = None) -> list[dict[str, Any]]:
    """The Jupyter servers of this user, from their ``jpserver-*.json`` / ``nbserver-*.json`` files
    in the runtime folder (what ``jupyter server list`` reads; no Jupyter server package needed)."""
    if runtime_dir is None:
        try:
            from jupyter_core.paths import jupyter_runtime_dir
        except ImportError:
            return []
        runtime_dir = Path(jupyter_runtime_dir())
    found = []
    for pattern in ("jpserver-*.json", "nbserver-*.json"):
        for path in sorted(runtime_dir.glob(pattern)):
            try:
                info = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # a server writing or removing its file just now
            if isinstance(info, dict):
                found.append(info)
    return found


def kernel_server(
    servers: list[dict[str, Any]] | None = None, ppid: int | None = None
) -> dict[str, Any] | None:
    """The Jupyter server that started this kernel: the one whose process is the kernel's parent."""
    parent = os.getppid() if ppid is None else ppid
    servers = running_servers() if servers is None else servers
    return next((s for s in servers if s.get("pid") == parent), None)


def detect(environ: Mapping[str, str] | None = None) -> Place:
    """Where this kernel runs and how its browser can reach a server on the kernel's loopback."""
    environ = os.environ if environ is None else environ
    if in_colab(environ=environ):
        return Place("colab", why="Google Colab")
    if not in_kernel():
        return Place("url", why="not in a notebook kernel")
    if in_vscode(environ):
        return Place("local", why="VS Code")
    hub = environ.get("JUPYTERHUB_SERVICE_PREFIX")
    server = None if hub else kernel_server()
    if hub is None and server is None:
        return Place("local", why="a kernel not started by a Jupyter server found here")
    where = f"JupyterHub ({hub})" if hub else f"the Jupyter server at {server['url'] if server else ''}"
    base = hub if hub else str(server.get("base_url", "/") if server else "/")
    if has_proxy():
        return Place("proxy", base_url=base, why=f"{where} with jupyter-server-proxy")
    if server is not None and is_loopback(str(server.get("hostname", ""))):
        return Place("local", why=f"{where} on loopback, without jupyter-server-proxy")
    return Place("url", why=f"{where}, without jupyter-server-proxy")


def proxy_path(base_url: str, port: int | str) -> str:
    """The path under which jupyter-server-proxy serves ``port``: ``{base_url}proxy/{port}/``."""
    base = base_url.strip("/")
    return f"/{base}/proxy/{port}/" if base else f"/proxy/{port}/"


def forward_message(url: str, port: int, *, why: str = "") -> str:
    """What to do when no IFrame can show the UI: the URL, and the ``ssh -L`` that forwards it."""
    host = socket.gethostname()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (some containers)
        user = "USER"
    reason = f" ({why})" if why else ""
    return "\n".join(
        [
            f"Embedding Explorer is serving at {url} on {host}, the machine that runs this kernel{reason}.",
            "A browser on another machine reaches it through a forwarded port:",
            f"  ssh -N -L {port}:127.0.0.1:{port} {user}@{host}     then open {url}",
            "In Jupyter, `pip install jupyter-server-proxy` (then restart the Jupyter server) and",
            "run.show() shows the UI inline through the server; run.show(mode='local') shows",
            "an IFrame of the local URL anyway.",
        ]
    )


_shown: dict[tuple[str, ...], ServerHandle] = {}  # servers started by show(), by their runs


def show(runs_or_paths: RunsOrPaths, *, height: int = 800, mode: Mode | None = None) -> ServerHandle:
    """Serve runs in the background on a free loopback port and show the UI in this notebook.

    Parameters
    ----------
    runs_or_paths : Run, path, or list of them
    height : int, default=800
        The IFrame's height in pixels.
    mode : {"colab", "proxy", "local", "url"}, optional
        How to show it; default: detected (:func:`detect`). ``"colab"``: Colab's output proxy;
        ``"proxy"``: ``{base_url}proxy/{port}/`` of the Jupyter server (jupyter-server-proxy);
        ``"local"``: an IFrame of ``http://127.0.0.1:PORT/``; ``"url"``: print the URL and how to
        forward the port.

    Returns
    -------
    The server's :class:`.ServerHandle` (``.url``, ``.stop()``), at once. Showing the same runs
    again (a re-executed cell) stops the previous server.
    """
    if mode is not None and mode not in MODES:
        raise ValueError(f"mode={mode!r} is not one of {', '.join(map(repr, MODES))} (or None to detect)")
    height = _checked_height(height)
    place = detect() if mode is None else _place_for(mode)
    runs = load_runs(runs_or_paths)
    key = tuple(run.url for run in runs)
    previous = _shown.pop(key, None)
    if previous is not None:
        previous.stop()
    if place.mode == "colab":
        handle = serve(runs, port=0, block=False, hosts=["*"], frame_ancestors=COLAB_FRAME_ANCESTORS)
    elif place.mode == "proxy":
        handle = serve(runs, port=0, block=False, root_path=proxy_path(place.base_url, "{port}"))
    else:
        handle = serve(runs, port=0, block=False)
    _shown[key] = handle
    _display(place, handle, height)
    return handle


def _display(place: Place, handle: ServerHandle, height: int) -> None:
    port = handle.port
    if place.mode == "url":
        print(forward_message(handle.url, port, why=place.why), flush=True)
        return
    if place.mode == "colab":
        from google.colab import output

        output.serve_kernel_port_as_iframe(port, path="/", width="100%", height=str(height))
        return
    from IPython.display import IFrame, display

    src = proxy_path(place.base_url, port) if place.mode == "proxy" else handle.url
    display(IFrame(src, width="100%", height=height))  # type: ignore[no-untyped-call]


def _place_for(mode: Mode) -> Place:
    """The place an explicit ``mode`` names; ``proxy`` takes the base URL detection finds."""
    if mode == "colab" and not _importable("google.colab"):
        raise ValueError("mode='colab' needs Google Colab (google.colab cannot be imported here)")
    if mode in ("local", "proxy") and not _importable("IPython"):
        raise ValueError(f"mode={mode!r} shows an IFrame, which needs IPython; use mode='url'")
    if mode == "proxy":
        hub = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
        server = None if hub else kernel_server()
        base = hub or (str(server.get("base_url", "/")) if server else "/")
        return Place("proxy", base_url=base, why="mode='proxy'")
    return Place(mode, why=f"mode={mode!r}")


def _checked_height(height: int) -> int:
    if isinstance(height, bool) or not isinstance(height, int) or height <= 0:
        raise ValueError(f"height={height!r} must be a positive number of pixels")
    return height


def _importable(name: str) -> bool:
    if name in sys.modules:  # loaded already (or blocked: None)
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module without a spec
        return False
