"""The house rule: bot -> commands -> consensus, and consensus stays pure."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Pure computational libraries consensus/ may use (no I/O).
CONSENSUS_ALLOWED = {"cryptography"}
# Modules (or packages, with everything under them) each layer must not import.
FORBIDDEN = {
    "consensus": {
        "bot", "commands", "nio", "aiosqlite", "sqlite3", "apscheduler", "yaml", "socket",
        "subprocess", "asyncio", "os", "time", "random", "secrets", "urllib.request", "http",
        "shutil", "pathlib", "logging",
    },
    "commands": {
        "bot", "nio", "aiosqlite", "sqlite3", "apscheduler", "yaml", "socket", "subprocess",
        "os", "random", "urllib.request",
    },
}  # fmt: skip


def imports_of(path: Path):
    """The full dotted name of every module a file imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def is_under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("package", ["consensus", "commands"])
def test_layers_import_downwards_only(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imports_of(path):
            bad = [f for f in FORBIDDEN[package] if is_under(name, f)]
            assert not bad, f"{path.relative_to(ROOT)} imports {name}"


def test_consensus_uses_only_stdlib_and_the_allow_list():
    for path in sorted((ROOT / "consensus").rglob("*.py")):
        for name in imports_of(path):
            top = name.split(".")[0]
            ok = (
                top in sys.stdlib_module_names
                or top in CONSENSUS_ALLOWED
                or top in {"consensus", "__future__"}
            )
            assert ok, f"{path.relative_to(ROOT)} imports {name}, not allowed in consensus/"
