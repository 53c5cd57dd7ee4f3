"""Starting the server: from a shell (``serve``) or in the background (``block=False``; a
notebook's ``show`` in :mod:`.notebook` uses it).

A server on a loopback host (127.0.0.1, ::1, localhost) needs no token: only this machine can
reach it. On any other host it gets a token, generated and printed with the URL as Jupyter does
(``http://HOST:PORT/?token=...``), unless ``no_token=True`` says the network is trusted.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import socket
import threading
import time
import webbrowser
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, overload

import uvicorn

from ..checks import port as checked_port
from ..run import Run, open_run
from .app import create_app
from .auth import check_token
from .guards import MAX_BODY_BYTES
from .prefix import normalize_root_path

RunsOrPaths = Run | str | os.PathLike[str] | Sequence[Run | str | os.PathLike[str]]
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
STARTUP_TIMEOUT_S = 30.0


class ServerHandle:
    """A server running in a background thread: its ``url``, ``port`` and ``stop()``."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, url: str, port: int) -> None:
        self.server = server
        self.thread = thread
        self.url = url
        self.port = port

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"ServerHandle({self.url!r}, {state})"

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to finish and wait (up to ``timeout`` seconds) until it has."""
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None, no_token: bool) -> str | None:
    """The token a server on ``host`` requires, or None for none.

    ``token="auto"`` always generates one; ``token=None`` generates one unless ``host`` is
    loopback; ``no_token=True`` turns the token off (and refuses an explicit token with it).
    """
    if no_token:
        if token not in (None, "auto"):
            raise ValueError("token=... and no_token=True contradict each other; pass one of them")
        return None
    if token == "auto" or (token is None and not is_loopback(host)):
        return secrets.token_urlsafe(32)
    return None if token is None else check_token(token)


def load_runs(runs_or_paths: RunsOrPaths) -> list[Run]:
    """Runs from Run objects or run directories (opened with ``open_run``)."""
    items = [runs_or_paths] if isinstance(runs_or_paths, (Run, str, os.PathLike)) else list(runs_or_paths)
    runs = [
        item if isinstance(item, Run) else open_run(item if isinstance(item, str) else Path(item))
        for item in items
    ]
    if not runs:
        raise ValueError("no runs to serve: pass a Run, a run directory, or a list of them")
    return runs


def allowed_hosts(host: str, secret: str | None, extra: Sequence[str] = ()) -> list[str] | None:
    """The Host headers a server on ``host`` answers: None (any) with a token, which a page of
    another site cannot know; without one, only the loopback names, the bound host (for a
    wildcard host, this machine's name and addresses) and ``extra``, so a page whose domain
    is rebound to this machine (DNS rebinding) reads nothing."""
    if secret is not None:
        return list(extra) or None
    names = [*LOOPBACK_HOSTS]
    if host in WILDCARD_HOSTS:
        names += machine_names()
    else:
        names.append(host_header_name(host))
    names += [host_header_name(h) for h in extra]
    return list(dict.fromkeys(n.lower() for n in names))


def host_header_name(host: str) -> str:
    """How ``host`` reads in a Host header: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def machine_names() -> list[str]:
    """This machine's host name, fully qualified name and addresses (what other machines use to
    reach a server on a wildcard host)."""
    names = [socket.gethostname(), socket.getfqdn()]
    with contextlib.suppress(OSError):  # a name that does not resolve: its name only
        names += socket.gethostbyname_ex(socket.gethostname())[2]
    return [host_header_name(n) for n in names if n]


def server_url(host: str, port: int, token: str | None, root_path: str = "") -> str:
    """The URL to open on this machine (a wildcard host is reached through loopback), under the
    prefix ``root_path`` (normalised) where one is given."""
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}{root_path}/" + (f"?token={token}" if token else "")


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (port 0: a free port)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise OSError(
            e.errno, f"cannot listen on {host}:{port} ({e.strerror}); pass another port, or port=0 for any"
        ) from e
    return sock


@overload
def serve(
    runs_or_paths: RunsOrPaths,
    *,
    host: str = ...,
    port: int = ...,
    token: str | None = ...,
    no_token: bool = ...,
    open_browser: bool = ...,
    block: Literal[True] = ...,
    directions_dir: str | os.PathLike[str] | None = ...,
    hosts: Sequence[str] = ...,
    frame_ancestors: Sequence[str] = ...,
    max_body: int = ...,
    root_path: str = ...,
) -> None: ...
@overload
def serve(
    runs_or_paths: RunsOrPaths,
    *,
    host: str = ...,
    port: int = ...,
    token: str | None = ...,
    no_token: bool = ...,
    open_browser: bool = ...,
    block: Literal[False],
    directions_dir: str | os.PathLike[str] | None = ...,
    hosts: Sequence[str] = ...,
    frame_ancestors: Sequence[str] = ...,
    max_body: int = ...,
    root_path: str = ...,
) -> ServerHandle: ...
def serve(
    runs_or_paths: RunsOrPaths,
    *,
    host: str = "127.0.0.1",
    port: int = 8031,
    token: str | None = None,
    no_token: bool = False,
    open_browser: bool = False,
    block: bool = True,
    directions_dir: str | os.PathLike[str] | None = None,
    hosts: Sequence[str] = (),
    frame_ancestors: Sequence[str] = (),
    max_body: int = MAX_BODY_BYTES,
    root_path: str = "",
) -> ServerHandle | None:
    """Serve runs to the web UI at ``http://host:port/``.

    Parameters
    ----------
    runs_or_paths : Run, path, or list of them
    host : str, default="127.0.0.1"
        Loopback by default. Any other host (e.g. ``"0.0.0.0"``) gets a token.
    port : int, default=8031
        0 picks a free port.
    token : str, "auto" or None
        The token requests must carry; "auto" generates one; None: one only off loopback.
    no_token : bool, default=False
        Serve without a token even off loopback (only on a network you trust).
    open_browser : bool, default=False
    block : bool, default=True
        Run until interrupted (Ctrl+C); False: run in a daemon thread and return its handle.
    directions_dir : path, optional
        Where to keep the recipes of directions made from sample ids across restarts
        (see :func:`.app.create_app`); default: in memory.
    hosts : list of str, optional
        Host names besides loopback and ``host`` that requests may name in their Host header
        when the server has no token (e.g. the name a proxy forwards); with a token, any host
        is answered unless these are given.
    frame_ancestors : list of str, optional
        Origins besides the page itself and a notebook on this machine that may embed the page
        (e.g. ``https://hub.example.org``).
    max_body : int, default=1 MiB
        Larger request bodies are refused (413).
    root_path : str, optional
        The path prefix a reverse proxy serves the UI under (``/tools/explorer``), whether it
        strips the prefix or passes it on; ``{port}`` in it becomes the port bound (port 0).
        The printed URL carries it.

    Returns
    -------
    None, or a :class:`ServerHandle` with ``.url`` and ``.stop()`` when ``block=False``.
    """
    port = checked_port(port)
    normalize_root_path(root_path.replace("{port}", "1"))  # a bad prefix fails before the runs load
    runs = load_runs(runs_or_paths)
    secret = resolve_token(host, token, no_token)
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    prefix = normalize_root_path(root_path.replace("{port}", str(bound)))
    try:
        app = create_app(
            runs,
            token=secret,
            allowed_hosts=allowed_hosts(host, secret, hosts),
            directions_dir=directions_dir,
            frame_ancestors=frame_ancestors,
            max_body=max_body,
            root_path=prefix,
        )
    except BaseException:
        sock.close()
        raise
    url = server_url(host, bound, secret, prefix)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", ws="none", lifespan="off")
    server = uvicorn.Server(config)
    print(f"Embedding Explorer: serving {len(runs)} run(s) at {url}", flush=True)
    if host in WILDCARD_HOSTS:
        print(f"  from other machines: {server_url(socket.gethostname(), bound, secret, prefix)}")
    if secret is None and not is_loopback(host):
        print(f"  without a token on {host}: anyone who can reach this port can see these runs")
    if open_browser:
        threading.Thread(target=_open_when_started, args=(server, url), daemon=True).start()
    if block:
        server.run(sockets=[sock])
        return None
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"embedding-explorer {url}"
    )
    thread.start()
    if not _wait_started(server, thread):
        server.should_exit = True
        sock.close()
        raise RuntimeError(f"the server at {url} did not start; see the log above")
    return ServerHandle(server, thread, url, bound)


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> bool:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _open_when_started(server: uvicorn.Server, url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if server.started:
        webbrowser.open(url)
