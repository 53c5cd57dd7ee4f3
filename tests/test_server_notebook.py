"""``show`` in a notebook: where the kernel runs (Colab, JupyterHub, a Jupyter server with or
without jupyter-server-proxy, VS Code, no notebook), the proxy path, and what each mode displays.

Colab itself cannot be reached here: a stand-in ``google.colab`` module records what ``show``
asks of it, and the server it names is then requested as Colab's proxy would (another Host).
"""

from __future__ import annotations

import json
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

import embedding_explorer as ee
from embedding_explorer.server import notebook
from embedding_explorer.server.notebook import Place, detect, in_colab, kernel_server, proxy_path, show

ENV = ("COLAB_RELEASE_TAG", "JUPYTERHUB_SERVICE_PREFIX", "VSCODE_PID", "VSCODE_CWD")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    data = torch.randn(24, 4, generator=torch.Generator().manual_seed(0))
    out = tmp_path_factory.mktemp("runs") / "small"
    return ee.explore(None, data, ["input"], out=out, name="small", labels=np.arange(24) % 2, progress=False)


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Colab, hub or VS Code variables; an empty Jupyter runtime folder of the test's own."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))


class Shell:
    kernel = object()  # an IPython kernel's shell has one; a terminal IPython's has not


@pytest.fixture
def displayed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, object]]]:
    """A kernel's IPython whose ``display`` records the IFrames shown as (src, height)."""
    shown: list[tuple[str, object]] = []
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = Shell  # type: ignore[attr-defined]
    display = types.ModuleType("IPython.display")
    display.IFrame = lambda src, width, height: (src, height)  # type: ignore[attr-defined]
    display.display = shown.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    yield shown


@pytest.fixture
def colab(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """A stand-in for ``google.colab`` recording ``output.serve_kernel_port_as_iframe`` calls."""
    calls: list[dict[str, Any]] = []
    google = types.ModuleType("google")
    package = types.ModuleType("google.colab")
    output = types.ModuleType("google.colab.output")
    output.serve_kernel_port_as_iframe = lambda port, **kw: calls.append({"port": port, **kw})  # type: ignore[attr-defined]
    package.output = output  # type: ignore[attr-defined]
    package.__path__ = []  # a package, as the real one
    google.colab = package  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", package)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    return calls


def write_server(runtime: Path, *, pid: int, base_url: str = "/", hostname: str = "localhost") -> None:
    """A Jupyter server's runtime file, as jupyter_server writes it (``jpserver-PID.json``)."""
    port = 8888
    info = {"base_url": base_url, "hostname": hostname, "pid": pid, "port": port, "secure": False}
    info |= {"url": f"http://{hostname}:{port}{base_url}", "token": "t", "root_dir": "/"}
    (runtime / f"jpserver-{pid}.json").write_text(json.dumps(info))


# ---- detection -----------------------------------------------------------------------------------
def test_colab_is_detected_by_its_module(colab: list[dict[str, Any]]) -> None:
    assert in_colab()
    assert detect() == Place("colab", why="Google Colab")


def test_colab_is_not_detected_elsewhere() -> None:
    assert not in_colab(modules={}, environ={})
    assert not in_colab(modules={}, environ={"COLAB_RELEASE_TAG": "x"})  # the variable, no module
    assert in_colab(modules={"google.colab": types.ModuleType("google.colab")}, environ={})


def test_without_a_kernel_the_url_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "IPython", None)
    assert detect().mode == "url"
    terminal = types.ModuleType("IPython")
    terminal.get_ipython = lambda: types.SimpleNamespace()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", terminal)
    assert detect().mode == "url"


@pytest.mark.usefixtures("displayed")
def test_vscode_shows_the_local_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VSCODE_PID", "1234")
    assert detect() == Place("local", why="VS Code")


@pytest.mark.usefixtures("displayed")
@pytest.mark.parametrize(("proxy", "mode"), [(True, "proxy"), (False, "url")])
def test_jupyterhub_uses_its_prefix(monkeypatch: pytest.MonkeyPatch, proxy: bool, mode: str) -> None:
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice/")
    monkeypatch.setattr(notebook, "has_proxy", lambda: proxy)
    place = detect()
    assert place.mode == mode and "JupyterHub (/user/alice/)" in place.why
    if proxy:
        assert place.base_url == "/user/alice/"


@pytest.mark.usefixtures("displayed")
@pytest.mark.parametrize(
    ("hostname", "proxy", "mode"),
    [
        ("localhost", True, "proxy"),
        ("0.0.0.0", True, "proxy"),
        ("localhost", False, "local"),
        ("0.0.0.0", False, "url"),
    ],
)
def test_the_jupyter_server_that_started_the_kernel(
    monkeypatch: pytest.MonkeyPatch, hostname: str, proxy: bool, mode: str
) -> None:
    runtime = Path(os.environ["JUPYTER_RUNTIME_DIR"])
    write_server(runtime, pid=os.getppid() + 1, base_url="/other/")  # another user's server
    write_server(runtime, pid=os.getppid(), base_url="/jhub/", hostname=hostname)
    monkeypatch.setattr(notebook, "has_proxy", lambda: proxy)
    place = detect()
    assert place.mode == mode
    if mode == "proxy":
        assert place.base_url == "/jhub/" and f"http://{hostname}:8888/jhub/" in place.why


@pytest.mark.usefixtures("displayed")
def test_a_kernel_no_server_started_shows_the_local_server(monkeypatch: pytest.MonkeyPatch) -> None:
    write_server(Path(os.environ["JUPYTER_RUNTIME_DIR"]), pid=os.getppid() + 1)
    monkeypatch.setattr(notebook, "has_proxy", lambda: True)
    assert detect().mode == "local"


def test_kernel_server_reads_the_runtime_files(tmp_path: Path) -> None:
    write_server(tmp_path, pid=41, base_url="/a/")
    (tmp_path / "jpserver-42.json").write_text("{not json")  # a file being written
    (tmp_path / "nbserver-43.json").write_text(json.dumps({"pid": 43, "base_url": "/classic/"}))
    servers = notebook.running_servers(tmp_path)
    assert kernel_server(servers, ppid=41)["base_url"] == "/a/"  # type: ignore[index]
    assert kernel_server(servers, ppid=43)["base_url"] == "/classic/"  # type: ignore[index]
    assert kernel_server(servers, ppid=42) is None


@pytest.mark.parametrize(
    ("base", "port", "path"),
    [
        ("/", 8031, "/proxy/8031/"),
        ("", 8031, "/proxy/8031/"),
        ("/user/alice/", 5000, "/user/alice/proxy/5000/"),
        ("user/alice", 5000, "/user/alice/proxy/5000/"),
        ("/jhub/user/bob%40x/", 1, "/jhub/user/bob%40x/proxy/1/"),
    ],
)
def test_proxy_path(base: str, port: int, path: str) -> None:
    assert proxy_path(base, port) == path


# ---- what each mode shows ------------------------------------------------------------------------
def test_colab_serves_the_port_through_its_proxy(run: ee.Run, colab: list[dict[str, Any]]) -> None:
    handle = show(run, height=600)
    try:
        assert colab == [{"port": handle.port, "path": "/", "width": "100%", "height": "600"}]
        # Colab's proxy asks with its own host name; a Colab page (its output frame) embeds it
        answer = httpx.get(
            f"http://127.0.0.1:{handle.port}/api/runs",
            headers={"Host": "8031-abc.prod.colab.dev"},
            timeout=10,
        )
        assert answer.status_code == 200 and answer.json()[0]["name"] == "small"
        policy = answer.headers["content-security-policy"]
        assert "https://colab.research.google.com" in policy and "https://*.googleusercontent.com" in policy
    finally:
        handle.stop()


def test_proxy_mode_shows_the_jupyter_path(
    run: ee.Run, displayed: list[tuple[str, object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice/")
    handle = show(run, mode="proxy", height=500)
    try:
        src = f"/user/alice/proxy/{handle.port}/"
        assert displayed == [(src, 500)]
        # jupyter-server-proxy strips the prefix; the app knows it (its schema names it)
        schema = httpx.get(f"http://localhost:{handle.port}/openapi.json", timeout=10).json()
        assert schema["servers"] == [{"url": src.rstrip("/")}]
        assert httpx.get(f"http://localhost:{handle.port}/api/runs", timeout=10).status_code == 200
    finally:
        handle.stop()


def test_local_mode_shows_the_local_url(run: ee.Run, displayed: list[tuple[str, object]]) -> None:
    handle = show(run, mode="local", height=500)
    try:
        assert displayed == [(handle.url, 500)] and handle.url.startswith("http://127.0.0.1:")
    finally:
        handle.stop()


def test_url_mode_says_what_to_forward(
    run: ee.Run, displayed: list[tuple[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    handle = show(run, mode="url")
    try:
        printed = capsys.readouterr().out
        assert displayed == []
        assert f"ssh -N -L {handle.port}:127.0.0.1:{handle.port} " in printed
        assert f"then open {handle.url}" in printed and "jupyter-server-proxy" in printed
    finally:
        handle.stop()


def test_show_without_ipython_prints_the_url(
    run: ee.Run, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "IPython", None)
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    handle = show(run)
    try:
        assert handle.running and f"then open {handle.url}" in capsys.readouterr().out
        with pytest.raises(ValueError, match="mode='local' shows an IFrame, which needs IPython"):
            show(run, mode="local")
    finally:
        handle.stop()


def test_bad_modes_and_heights_are_refused(run: ee.Run) -> None:
    with pytest.raises(ValueError, match="mode='jupyter' is not one of 'colab', 'proxy', 'local', 'url'"):
        show(run, mode="jupyter")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode='colab' needs Google Colab"):
        show(run, mode="colab")
    with pytest.raises(ValueError, match="height=0 must be a positive number of pixels"):
        show(run, height=0)


def test_showing_the_same_runs_again_replaces_the_previous_server(run: ee.Run) -> None:
    first = show([run], mode="url")
    second = show([run], mode="url")
    try:
        assert not first.running and second.running
    finally:
        second.stop()


def test_run_show_passes_the_mode_on(run: ee.Run, displayed: list[tuple[str, object]]) -> None:
    handle = run.show(mode="local", height=300)
    try:
        assert displayed == [(handle.url, 300)]
    finally:
        handle.stop()
