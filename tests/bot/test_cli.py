import subprocess
import sys

from bot import __version__
from bot.cli import SecretFilter, main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exit:
        assert exit.code == 0
    assert capsys.readouterr().out.strip() == f"commons {__version__}"


def test_check_config_names_the_bad_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text('matrix: {homeserver: "ftp://x", user_id: "@c:x", password: "p"}\n')
    assert main(["check-config", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("commons: matrix.homeserver:")
    assert "\n" not in err


def test_check_config_ok(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text('matrix: {homeserver: "http://127.0.0.1:8008", user_id: "@c:x"}\n')
    code = subprocess.run(
        [sys.executable, "-m", "bot", "check-config", "--config", str(good)],
        env={"COMMONS_MATRIX_PASSWORD": "secret", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert code.returncode == 0, code.stderr
    assert "secret" not in code.stdout + code.stderr


def test_secret_filter_blanks_secrets():
    import logging

    f = SecretFilter()
    f.secrets.add("tok123")
    record = logging.LogRecord("x", logging.INFO, "f", 1, "token is %s", ("tok123",), None)
    f.filter(record)
    assert record.getMessage() == "token is ***"


def test_verify_imports_neither_matrix_nio_nor_storage(tmp_path):
    """Importing matrix-nio alone takes longer than verifying a 100k-entry export."""
    from consensus.ledger import GENESIS, genesis_data, make_entry, rules_hash
    from consensus.rules import default_rules
    from consensus.verify import encode_line, export_line

    rules = default_rules()
    genesis = make_entry(
        prev=None,
        room="!r:x",
        ts=0,
        actor="@c:x",
        kind=GENESIS,
        data=genesis_data(rules, "A" * 43),
        event=None,
        rules=rules_hash(rules),
    )
    export = tmp_path / "export.jsonl"
    export.write_bytes(encode_line(export_line(genesis, None, None)))
    script = (
        "import sys\n"
        "from bot.cli import main\n"
        f"assert main(['verify', {str(export)!r}]) == 0\n"
        "heavy = {'nio', 'aiohttp', 'aiosqlite', 'bot.storage'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert "ok — 1 entries" in run.stdout
