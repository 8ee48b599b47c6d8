"""The docs say what the code does: the command table is generated from the declarations."""

from pathlib import Path

from commands.basics import markdown_table
from commands.declare import REGISTRY
from commands.dispatch import dispatch  # noqa: F401  (registers every command)

ROOT = Path(__file__).resolve().parent.parent


def test_readme_command_table_matches_the_declarations():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- commands:start -->\n") + len("<!-- commands:start -->\n")
    end = readme.index("<!-- commands:end -->")
    assert readme[start:end].strip() == markdown_table(REGISTRY)


def test_readme_commands_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for script in ("scripts/demo", "scripts/check"):
        assert f"\n{script}\n" in readme
        assert (ROOT / script).stat().st_mode & 0o111
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/check" in ci
