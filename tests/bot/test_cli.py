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
