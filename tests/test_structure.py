"""The library stays readable: short functions, no private name used across modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "afdm_lib"
MODULES = sorted(LIB.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(LIB)))
def test_no_function_is_over_100_lines(path):
    long = [(node.name, node.end_lineno - node.lineno + 1)
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > 100]
    assert not long, f"{path}: split {long}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(LIB)))
def test_no_private_name_is_imported_from_another_module(path):
    def private(name: str) -> bool:
        return any(p.startswith("_") and not p.startswith("__") for p in name.split("."))

    private = [f"{node.module}.{alias.name}" for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.ImportFrom)  # from this package, not third parties
               and (node.level > 0 or (node.module or "").startswith("afdm_lib"))
               for alias in node.names
               if private(alias.name) or private(node.module or "")]
    assert not private, f"{path} imports {private}"


def test_the_trainers_loop_is_short():
    tree = ast.parse((LIB / "train.py").read_text())
    loop = next(node for node in ast.walk(tree)
                if isinstance(node, ast.FunctionDef) and node.name == "_loop")
    assert loop.end_lineno - loop.lineno + 1 < 60
