"""Property-based fuzzing of the API against its own OpenAPI schema (hypothesis): for every
operation, requests built from the documented parameters (valid names mixed with arbitrary
text and out-of-range numbers) never get a 5xx, and every answer is what the schema says:
JSON that validates against the documented response, a binary array whose length matches its
``X-Shape``, or an error answer (``ErrorAnswer``).

The number of examples per operation is bounded (``MAX_EXAMPLES``) and derandomized, so the
module runs in well under a minute and fails the same way twice.
"""

from __future__ import annotations

import math
import urllib.parse
import warnings
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import embedding_explorer as ee
from embedding_explorer.server import create_app

with warnings.catch_warnings():
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

N = 30
MAX_EXAMPLES = 20
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[ee.Run]:
    out = tmp_path_factory.mktemp("fuzz")
    x = torch.randn(N, 5, generator=torch.Generator().manual_seed(0))
    labels = np.arange(N) % 3
    metadata = pd.DataFrame({"size": np.linspace(0, 1, N), "site": ["p", "q"] * (N // 2)})
    made = []
    for name, seed in (("a", 0), ("b", 1)):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 4))
        made.append(
            ee.explore(
                model,
                x,
                ["0", "2"],
                out=out / name,
                name=name,
                labels=labels,
                metadata=metadata,
                render=[f"text {i}" for i in range(N)],
                n_components=3,
                progress=False,
            )
        )
    return made


@pytest.fixture(scope="module")
def client(runs: list[ee.Run]) -> TestClient:
    return TestClient(create_app(runs), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def spec(client: TestClient) -> dict[str, Any]:
    return dict(client.get("/openapi.json").json())


def operations() -> list[tuple[str, str]]:
    app = create_app([])
    return [
        (method, path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in ("get", "post")
    ]


def value(name: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Valid names and values mixed with arbitrary ones, by parameter name and schema."""
    runs = st.sampled_from(["a", "b"])
    layers = st.sampled_from(["0", "2"])
    named: dict[str, st.SearchStrategy[Any]] = {
        "run": runs,
        "run_a": runs,
        "run_b": runs,
        "layer": layers,
        "layer_a": layers,
        "layer_b": layers,
        "basis": st.sampled_from(["pca", "ica", "dir:label:0:1", "dir:label:0:9", "dir:0123456789abcdef"]),
        "name": st.sampled_from(["label", "size", "site", "nope"]),
        "ids": st.lists(st.integers(-2, N + 2), min_size=1, max_size=5).map(lambda v: ",".join(map(str, v))),
        "components": st.lists(st.integers(-1, 4), min_size=1, max_size=4).map(
            lambda v: ",".join(map(str, v))
        ),
        "format": st.sampled_from(["csv", "parquet", "xml"]),
        "filter": st.sampled_from(
            [
                '{"labels": ["0"]}',
                '{"hide": [1]}',
                '{"query": "x"}',
                '{"ranges": {"size": [0, null]}}',
                '{"flags": {"site": true}}',
                '{"labels": "0"}',
                '{"ranges": {"size": [2, 1]}}',
                "{",
                "[]",
            ]
        ),
    }
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    kind = options[0].get("type", "string") if options else "string"
    if kind == "integer":
        lo, hi = options[0].get("minimum", -3), options[0].get("maximum", 300)
        typed: st.SearchStrategy[Any] = st.integers(int(lo) - 2, int(hi) + 2)
    elif kind == "number":
        typed = st.floats(-0.5, 1.5) | st.sampled_from([math.nan, math.inf])
    elif kind == "boolean":
        typed = st.booleans()
    else:
        typed = st.nothing()
    return named.get(name, typed) | typed | TEXT


def body() -> st.SearchStrategy[dict[str, Any]]:
    ids = st.lists(st.integers(-2, N + 2), max_size=6)
    label = st.sampled_from(["0", "1", 2, "nope"]) | TEXT | st.integers(-2, 5)
    return st.fixed_dictionaries(
        {},
        optional={"ids_a": ids, "ids_b": ids, "label_a": label, "label_b": label, "name": TEXT},
    )


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return resolve(spec, spec["components"]["schemas"][ref.rsplit("/", 1)[1]]) if ref else schema


def check_answer(spec: dict[str, Any], operation: dict[str, Any], r: Any, what: str) -> None:
    assert r.status_code < 500, f"{what} -> {r.status_code}: {r.text[:300]}"
    media = r.headers.get("content-type", "").split(";")[0]
    if r.status_code == 304 or r.status_code in (301, 302, 307):
        return
    if r.status_code >= 400:
        assert media == "application/json", what
        if r.status_code != 405:  # a fuzzed path parameter ("/") that matches no route at all
            assert str(r.status_code) in operation["responses"], f"{what} -> undocumented {r.status_code}"
        schema = {"$ref": "#/components/schemas/ErrorAnswer"}
    elif media == "application/json":
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    else:
        if media == "application/octet-stream" and "x-shape" in r.headers:
            shape = [int(s) for s in r.headers["x-shape"].split(",")]
            itemsize = np.dtype(r.headers.get("x-dtype", "float32")).itemsize  # codes may be int8/16
            assert len(r.content) == int(np.prod(shape)) * itemsize, what
        assert media in operation["responses"]["200"].get("content", {}), what
        return
    jsonschema.Draft202012Validator({**schema, "components": spec["components"]}).validate(r.json())


@pytest.mark.parametrize(("method", "path"), operations())
def test_fuzzed_requests_get_no_5xx_and_schema_answers(
    client: TestClient, spec: dict[str, Any], method: str, path: str
) -> None:
    operation = spec["paths"][path][method]
    params = [p for p in operation.get("parameters", []) if p["in"] in ("path", "query")]
    strategies = {
        p["name"]: value(p["name"], p.get("schema", {}))
        if p.get("required")
        else st.none() | value(p["name"], p.get("schema", {}))
        for p in params
    }
    where = {p["name"]: p["in"] for p in params}

    @FUZZ
    @given(values=st.fixed_dictionaries(strategies), payload=body())
    def fuzz(values: dict[str, Any], payload: dict[str, Any]) -> None:
        url, query = path, {}
        for name, v in values.items():
            if v is None:
                continue
            text = str(v).lower() if isinstance(v, bool) else str(v)
            if where[name] == "path":
                url = url.replace(f"{{{name}}}", urllib.parse.quote(text, safe="") or "%20")
            else:
                query[name] = text
        if method == "post":
            r = client.post(url, params=query, json=payload)
        else:
            r = client.get(url, params=query)
        check_answer(
            spec, operation, r, f"{method.upper()} {url} {query} {payload if method == 'post' else ''}"
        )

    fuzz()
