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
    private = [f"{node.module}.{alias.name}" for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.ImportFrom)
               for alias in node.names
               if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert not private, f"{path} imports {private}"


def test_the_trainers_loop_is_short():
    tree = ast.parse((LIB / "train.py").read_text())
    loop = next(node for node in ast.walk(tree)
                if isinstance(node, ast.FunctionDef) and node.name == "_loop")
    assert loop.end_lineno - loop.lineno + 1 < 60
