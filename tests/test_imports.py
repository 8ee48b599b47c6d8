"""The house rule: bot -> commands -> consensus, and consensus stays pure."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Pure computational libraries consensus/ may use (no I/O).
CONSENSUS_ALLOWED = {"cryptography"}
FORBIDDEN = {
    "consensus": {
        "bot",
        "commands",
        "nio",
        "aiosqlite",
        "sqlite3",
        "apscheduler",
        "yaml",
        "socket",
        "subprocess",
        "asyncio",
        "os",
        "time",
        "random",
        "secrets",
        "urllib",
        "http",
        "shutil",
        "pathlib",
        "logging",
    },
    "commands": {
        "bot",
        "nio",
        "aiosqlite",
        "sqlite3",
        "apscheduler",
        "yaml",
        "socket",
        "subprocess",
        "os",
        "random",
    },
}


def imports_of(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("package", ["consensus", "commands"])
def test_layers_import_downwards_only(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imports_of(path):
            assert name not in FORBIDDEN[package], f"{path.relative_to(ROOT)} imports {name}"


def test_consensus_uses_only_stdlib_and_the_allow_list():
    for path in sorted((ROOT / "consensus").rglob("*.py")):
        for name in imports_of(path):
            ok = (
                name in sys.stdlib_module_names
                or name in CONSENSUS_ALLOWED
                or name in {"consensus", "__future__"}
            )
            assert ok, f"{path.relative_to(ROOT)} imports {name}, not allowed in consensus/"
