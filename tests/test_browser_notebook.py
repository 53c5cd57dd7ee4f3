"""``run.show()`` in a real JupyterLab with jupyter-server-proxy, started here under a base URL.

A notebook that opens a run and calls ``run.show()`` is executed through the Jupyter server: a
session the server starts a kernel for, its cells sent over the server's kernel websocket as
JupyterLab sends them. The kernel (a child of that server) finds its server and the proxy, so its
output is an IFrame of ``{base_url}proxy/{port}/``; that page, opened in Chromium through the
Jupyter server's URL (with Jupyter's login), draws the gallery, both on its own and framed in a
page of the Jupyter server as the notebook shows it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from browser_support import ROOT, Page, make_run, missing_requirements, wait_images

pytestmark = pytest.mark.browser
BASE = "/jhub/user/tester/"
TOKEN = "notebook-test-token-1234"
START_TIMEOUT_S = 180
CELL_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """JupyterLab on a free loopback port under ``BASE`` with a token: its origin and root folder."""
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    for package in ("jupyterlab", "jupyter_server_proxy", "websocket"):
        pytest.importorskip(package)  # dev dependencies: installed with `pip install -e .[dev]`
    home = tmp_path_factory.mktemp("jupyter")
    root = home / "notebooks"
    root.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    for name in ("JUPYTERHUB_SERVICE_PREFIX", "VSCODE_PID", "VSCODE_CWD", "COLAB_RELEASE_TAG"):
        env.pop(name, None)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",  # harmless when not root; some CI containers run tests as root
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.base_url={BASE}",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={TOKEN}",
        "--LabApp.news_url=",
        "--LabServerApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log = (home / "jupyter.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {(home / 'jupyter.log').read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{origin}{BASE}api/status", headers=auth(), timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start: {(home / 'jupyter.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield origin, root
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def auth() -> dict[str, str]:
    return {"Authorization": f"token {TOKEN}"}


class KernelChannel:
    """A kernel of the Jupyter server, driven over the server's websocket as JupyterLab does."""

    def __init__(self, origin: str, kernel_id: str) -> None:
        import websocket

        self.session = uuid.uuid4().hex
        url = origin.replace("http://", "ws://") + f"{BASE}api/kernels/{kernel_id}/channels"
        self.ws = websocket.create_connection(
            f"{url}?session_id={self.session}",
            header=[f"Authorization: token {TOKEN}"],
            timeout=CELL_TIMEOUT_S,
        )

    def execute(self, code: str) -> list[dict[str, Any]]:
        """Run ``code``; its outputs as nbformat outputs (stream, display_data, error...)."""
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": "execute_request", "session": self.session}
        header |= {"username": "test", "version": "5.3", "date": ""}
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}}
        content |= {"allow_stdin": False, "stop_on_error": True}
        message = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
        self.ws.send(json.dumps({**message, "channel": "shell", "buffers": []}))
        outputs: list[dict[str, Any]] = []
        idle = replied = False
        deadline = time.monotonic() + CELL_TIMEOUT_S
        while not (idle and replied):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the kernel did not finish {code!r}; outputs so far: {outputs}")
            answer = json.loads(self.ws.recv())
            if answer.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = answer["header"]["msg_type"]
            if answer["channel"] == "shell" and kind == "execute_reply":
                replied = True
            elif kind == "status":
                idle = answer["content"]["execution_state"] == "idle"
            elif kind in ("stream", "display_data", "execute_result", "error"):
                outputs.append({"output_type": kind, **answer["content"]})
        return outputs

    def close(self) -> None:
        self.ws.close()


def iframe_src(outputs: list[dict[str, Any]]) -> tuple[str, str]:
    """The HTML of the IFrame the cell displayed, and its ``src``."""
    htmls = [
        o["data"]["text/html"]
        for o in outputs
        if o["output_type"] == "display_data" and "text/html" in o["data"]
    ]
    assert len(htmls) == 1, outputs
    found = re.search(r'src="([^"]+)"', htmls[0])
    assert found, htmls[0]
    return htmls[0], found.group(1)


def test_run_show_draws_the_gallery_through_jupyter_server_proxy(
    jupyter: tuple[str, Path], browser: Any, tmp_path: Path
) -> None:
    origin, root = jupyter
    run = make_run(tmp_path / "tiny-cnn")
    cells = [
        f"import embedding_explorer as ee\nrun = ee.open_run({str(run.path)!r})",
        "handle = run.show(height=640)",
        "from embedding_explorer.server.notebook import detect\nprint(detect())",
    ]
    notebook = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None}
            for c in cells
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / "show.ipynb").write_text(json.dumps(notebook))
    api = f"{origin}{BASE}api"
    session = httpx.post(
        f"{api}/sessions",
        headers=auth(),
        json={"path": "show.ipynb", "name": "show.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
        timeout=60,
    )
    assert session.status_code == 201, session.text
    kernel = KernelChannel(origin, session.json()["kernel"]["id"])
    try:
        outputs = [kernel.execute(code) for code in cells]
        errors = [o for out in outputs for o in out if o["output_type"] == "error"]
        assert errors == [], errors
        html, src = iframe_src(outputs[1])
        port = re.fullmatch(rf"{BASE}proxy/(\d+)/", src)
        assert port, src  # the proxy's path under the server's base URL, not the kernel's loopback
        detected = "".join(o.get("text", "") for o in outputs[2])
        assert "mode='proxy'" in detected and f"base_url='{BASE}'" in detected, detected

        prefix = f"{origin}{src}"
        inside = (prefix, "data:", "blob:")
        ui = Page(browser, f"{prefix}?token={TOKEN}")  # Jupyter's login: its token, then its cookie
        requests: list[tuple[str, bool]] = []  # (url, made by the top page)
        ui.page.on("request", lambda r: requests.append((r.url, r.frame == ui.page.main_frame)))
        try:
            page = ui.open()
            wait_images(page, page.get_by_test_id("gallery").locator("img"))
            shown = next(layer for layer in run.layers if layer != "input")  # the app opens on it
            assert page.get_by_test_id("gallery-column").count() == run[shown].n_components
            ui.shot("61-jupyter-proxy-gallery")
            assert [u for u, _ in requests if not u.startswith(inside)] == []
            assert ui.unexpected_errors() == [], ui.errors
            # the output as the notebook shows it: the IFrame in JupyterLab's page (its origin and
            # its Content-Security-Policy), put in place of the page's content
            page.goto(f"{origin}{BASE}lab", wait_until="domcontentloaded")
            requests.clear()
            page.evaluate("html => { document.open(); document.write(html); document.close(); }", html)
            frame = page.frame_locator("iframe")
            frame.get_by_test_id("layer-list").wait_for()
            frame.get_by_test_id("gallery").locator("img").first.wait_for()
            page.wait_for_function(
                "() => [...document.querySelector('iframe').contentDocument.querySelectorAll("
                "'[data-testid=gallery] img')].some((img) => img.complete && img.naturalWidth > 0)"
            )
            ui.shot("62-jupyter-notebook-iframe")
            framed = [u for u, top in requests if not top]
            assert any("/api/runs" in u for u in framed)
            assert [u for u in framed if not u.startswith(inside)] == []
        finally:
            ui.close()
        kernel.execute("handle.stop()")
    finally:
        kernel.close()
        httpx.delete(f"{api}/sessions/{session.json()['id']}", headers=auth(), timeout=60)
