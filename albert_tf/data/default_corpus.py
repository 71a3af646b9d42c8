"""A built-in pretraining corpus that needs no download: Python's own docs.

Every CPython ships the language reference topics (`pydoc_data.topics`) and
the standard library's sources; their docstrings are English prose. This
turns both into the pretraining input format (one sentence per line, a
blank line between documents) for the quickstart. The text depends on the
Python version, so the corpus is a demo set, not a benchmark.
"""

from __future__ import annotations

import ast
import os
import re
import sysconfig
from typing import Iterator

from albert_tf import fileio

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(A-Z])")
_RULE = re.compile(r"^[\s*=\-~^#]+$")
# Library parts without prose worth learning from.
_SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages",
              "__pycache__", "turtledemo", "ensurepip", "pydoc_data"}
MIN_WORDS = 4


def _prose_paragraphs(text: str) -> Iterator[str]:
    """Paragraphs of running text: code, tables and rules dropped."""
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines or any(line.startswith("   ") or ">>>" in line
                            or _RULE.match(line) for line in lines):
            continue
        paragraph = " ".join(line.strip() for line in lines)
        if len(paragraph.split()) >= MIN_WORDS:
            yield paragraph


def _sentences(text: str) -> list[str]:
    sentences = []
    for paragraph in _prose_paragraphs(text):
        for sentence in _SENTENCE_END.split(paragraph):
            sentence = " ".join(sentence.split())
            if len(sentence.split()) >= MIN_WORDS:
                sentences.append(sentence)
    return sentences


def _docstrings(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return ""
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                             ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                texts.append(doc)
    return "\n\n".join(texts)


def _stdlib_files() -> list[str]:
    root = sysconfig.get_paths()["stdlib"]
    files = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIP_DIRS)
        files += [os.path.join(directory, n) for n in sorted(names)
                  if n.endswith(".py")]
    return files


def documents() -> Iterator[list[str]]:
    """Documents (lists of sentences): reference topics, then modules."""
    import pydoc_data.topics  # Ships with CPython.

    for name in sorted(pydoc_data.topics.topics):
        doc = _sentences(pydoc_data.topics.topics[name])
        if len(doc) >= 2:
            yield doc
    for path in _stdlib_files():
        doc = _sentences(_docstrings(path))
        if len(doc) >= 2:
            yield doc


def write_corpus(path: str, max_bytes: int = 4_000_000) -> dict[str, int]:
    """Writes up to `max_bytes` of documents atomically; returns counts."""
    counts = {"documents": 0, "sentences": 0, "bytes": 0}
    parts = []
    for doc in documents():
        text = "\n".join(doc) + "\n\n"
        size = len(text.encode("utf-8"))
        if counts["bytes"] + size > max_bytes:
            break
        parts.append(text)
        counts["documents"] += 1
        counts["sentences"] += len(doc)
        counts["bytes"] += size
    if not counts["documents"]:
        raise RuntimeError("the default corpus came out empty: this Python "
                           "lacks pydoc_data and standard library sources")
    fileio.write_atomic(path, "".join(parts))
    return counts
