"""rules/ stays pure: no services, no environment, no clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RULES_DIR = Path(__file__).parents[2] / "rules"
FORBIDDEN_MODULES = ("sqlalchemy", "fastapi", "faust", "aiokafka", "asyncpg", "os", "httpx")
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "getenv"}


@pytest.mark.parametrize("path", sorted(RULES_DIR.glob("*.py")), ids=lambda p: p.name)
def test_module_is_pure(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name} imports {name}"
        if isinstance(node, ast.Attribute):
            assert node.attr not in FORBIDDEN_CALLS | {"environ"}, f"{path.name}: .{node.attr}"
