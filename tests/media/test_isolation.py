"""mediamill.media stands alone: nothing of ours but itself, no Prefect, no SQL."""

from __future__ import annotations

import ast
from pathlib import Path

import mediamill.media

PACKAGE = Path(mediamill.media.__file__).parent
FORBIDDEN_ROOTS = {"prefect", "sqlalchemy", "alembic", "fsspec", "pydantic", "pydantic_settings"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_media_imports_only_itself_from_mediamill() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert modules
    for module in modules:
        for name in _imports(module):
            if name.startswith("mediamill"):
                assert name.startswith("mediamill.media"), f"{module.name} imports {name}"
            assert name.split(".")[0] not in FORBIDDEN_ROOTS, f"{module.name} imports {name}"


def test_media_modules_hold_no_machine_paths() -> None:
    for module in PACKAGE.rglob("*.py"):
        text = module.read_text()
        for marker in ("/work/", "/home/", "/root/", "/Users/"):
            assert marker not in text, f"{module.name} mentions {marker}"
