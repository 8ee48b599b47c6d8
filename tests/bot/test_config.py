"""Operator config: the example file, defaults, env secrets, rules, and one-line errors."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from bot.config import (
    ENV_ACCESS_TOKEN,
    ENV_PASSWORD,
    BotSettings,
    Config,
    ConfigError,
    InviteSettings,
    MatrixConfig,
    load_config,
    rules_example_yaml,
)
from consensus.rules import RULES, RoomRules, default_rules

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"
MINIMAL = """\
matrix:
  homeserver: "https://matrix.example.org/"
  user_id: "@commons:example.org"
  password: "hunter2-secret"
"""


def write(tmp_path: Path, text: str | bytes, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), env or {})


# --- the example file ---------------------------------------------------------------------


def test_example_loads_with_a_password_from_the_environment() -> None:
    config = load_config(EXAMPLE, {ENV_PASSWORD: "from-env"})
    assert config.matrix == MatrixConfig(
        "http://127.0.0.1:8008", "@commons:localhost", "from-env", None, "commons"
    )
    assert config.bot == BotSettings(EXAMPLE.parent / "data", "!", 24 * 3_600_000, "INFO")
    assert config.invites == InviteSettings(("localhost",), (), 100)
    assert config.rules == {}
    assert config.starting_rules() == RoomRules.defaults()
    assert config.path == EXAMPLE


def test_example_documents_every_field() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    loaded = yaml.safe_load(text)
    sections = {"matrix": MatrixConfig, "bot": BotSettings, "invites": InviteSettings}
    lines = text.splitlines()
    for section, cls in sections.items():
        names = {f.name.removesuffix("_ms") for f in dataclasses.fields(cls)}
        assert set(loaded[section]) == names
        for name in names:
            (index,) = [i for i, line in enumerate(lines) if line.startswith(f"  {name}:")]
            # Each setting has a comment right above it.
            assert lines[index - 1].lstrip().startswith("#"), name
    assert set(loaded) == {"matrix", "bot", "invites", "rules"}


def test_example_lists_every_rule_with_its_default() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert rules_example_yaml() in text
    for key in RULES:
        assert re.search(rf"^  # {re.escape(key)}: ", text, re.MULTILINE), key


def test_uncommented_example_rules_are_the_defaults(tmp_path: Path) -> None:
    block = rules_example_yaml()
    uncommented = "\n".join(
        line.replace("  # ", "  ", 1) if re.match(r"  # [a-z_.]+: ", line) else line
        for line in block.splitlines()
    )
    config = load(tmp_path, MINIMAL + uncommented)
    assert config.rules == default_rules()
    assert {config.rule_source(key) for key in RULES} == {"config"}


# --- defaults, paths, secrets -------------------------------------------------------------


def test_minimal_config_takes_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL)
    assert config.matrix.homeserver == "https://matrix.example.org"
    assert config.matrix.device_name == "commons"
    assert config.matrix.access_token is None
    assert config.bot == BotSettings(tmp_path / "data", "!", 86_400_000, "INFO")
    # Without a list, only the bot's own server may invite it.
    assert config.invites == InviteSettings(("example.org",), (), 100)
    assert config.rules == {}
    assert config.starting_rules() == RoomRules.defaults()
    assert config.rule_source("timezone") == "default"


def test_data_dir_is_relative_to_the_config_folder(tmp_path: Path) -> None:
    sub = tmp_path / "etc"
    sub.mkdir()
    path = write(sub, MINIMAL + "bot:\n  data_dir: state/commons\n")
    assert load_config(path, {}).bot.data_dir == sub / "state" / "commons"
    path = write(sub, MINIMAL + f"bot:\n  data_dir: {tmp_path / 'abs'}\n")
    assert load_config(path, {}).bot.data_dir == tmp_path / "abs"


def test_bot_settings_are_read(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        MINIMAL
        + "bot:\n  command_prefix: '?'\n  max_command_age: 1h30m\n  log_level: debug\n"
        + "invites:\n  allowed_servers: [a.org, 'b.org:8448', '[::1]']\n"
        + "  allowed_users: ['@x:c.org']\n  max_rooms: 5\n",
    )
    assert config.bot.command_prefix == "?"
    assert config.bot.max_command_age_ms == 5_400_000
    assert config.bot.log_level == "DEBUG"
    assert config.invites == InviteSettings(("a.org", "b.org:8448", "[::1]"), ("@x:c.org",), 5)


def test_environment_secrets_win_over_the_file(tmp_path: Path) -> None:
    env = {ENV_PASSWORD: "env-pass", ENV_ACCESS_TOKEN: "env-token"}
    config = load(tmp_path, MINIMAL, env)
    assert config.matrix.password == "env-pass"
    assert config.matrix.access_token == "env-token"
    # An empty variable counts as unset.
    assert load(tmp_path, MINIMAL, {ENV_PASSWORD: ""}).matrix.password == "hunter2-secret"


def test_access_token_alone_is_enough(tmp_path: Path) -> None:
    text = MINIMAL.replace('password: "hunter2-secret"', "access_token: syt_secret_token")
    config = load(tmp_path, text)
    assert (config.matrix.password, config.matrix.access_token) == (None, "syt_secret_token")
    no_secret = MINIMAL.replace('  password: "hunter2-secret"\n', "")
    assert load(tmp_path, no_secret, {ENV_ACCESS_TOKEN: "tok"}).matrix.access_token == "tok"


def test_secrets_never_appear_in_repr_or_str(tmp_path: Path) -> None:
    config = load(
        tmp_path, MINIMAL + "", {ENV_ACCESS_TOKEN: "syt_very_secret", ENV_PASSWORD: "pw-secret"}
    )
    for text in (repr(config), str(config), repr(config.matrix), str(config.matrix)):
        assert "pw-secret" not in text and "syt_very_secret" not in text
        assert "@commons:example.org" in text
    assert "password='<hidden>'" in repr(config.matrix)
    bare = MatrixConfig("http://h", "@a:h", None, "tok-secret")
    assert "password=None" in repr(bare) and "tok-secret" not in repr(bare)


def test_may_invite() -> None:
    by_server = InviteSettings(("example.org", "b.org:8448"))
    assert by_server.may_invite("@alice:example.org")
    assert by_server.may_invite("@bob:b.org:8448")
    assert not by_server.may_invite("@eve:evil.org")
    assert not by_server.may_invite("@eve:example.org.evil.org")
    by_user = InviteSettings(("example.org",), ("@alice:other.org",))
    assert by_user.may_invite("@alice:other.org")
    assert not by_user.may_invite("@bob:example.org")


# --- rules --------------------------------------------------------------------------------


def test_flat_and_nested_rules_mean_the_same(tmp_path: Path) -> None:
    flat = load(
        tmp_path,
        MINIMAL + "rules:\n  timezone: europe/paris\n  kudos.pair_daily_cap: 5\n"
        "  report.time: '9:30'\n  kudos.half_life: off\n",
    )
    nested = load(
        tmp_path,
        MINIMAL + "rules:\n  timezone: Europe/Paris\n  kudos:\n    pair_daily_cap: '5'\n"
        "    half_life: 'OFF'\n  report: {time: '09:30'}\n  action:\n",
    )
    expected = {
        "timezone": "Europe/Paris",
        "kudos.pair_daily_cap": 5,
        "kudos.half_life": "off",
        "report.time": "09:30",
    }
    assert flat.rules == nested.rules == expected
    assert list(flat.rules) == [key for key in RULES if key in expected]
    rules = flat.starting_rules()
    assert rules.pair_daily_cap == 5 and rules.timezone == "Europe/Paris"
    assert rules.daily_allowance == 10
    assert flat.rule_source("kudos.pair_daily_cap") == "config"
    assert flat.rule_source("kudos.daily_allowance") == "default"
    with pytest.raises(KeyError):
        flat.rule_source("kudos.nope")


def test_rules_lists_and_null(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        MINIMAL + "rules:\n  action.reminders: [1h, 1d]\n  kudos.reaction_emoji: ['👏', '🙌']\n"
        "  report.moderators_room: null\n",
    )
    assert config.rules == {
        "kudos.reaction_emoji": "👏,🙌",
        "action.reminders": "24h,1h",
        "report.moderators_room": None,
    }


# --- errors -------------------------------------------------------------------------------

BAD_CONFIGS = [
    ("", "matrix: missing"),
    ("[1, 2]", "expected a mapping with matrix, bot, invites and rules"),
    (MINIMAL + "colour: blue\n", "colour: unknown key"),
    (MINIMAL + "rule:\n  timezone: UTC\n", "rule: unknown key (did you mean rules?)"),
    ("matrix: 5\n", "matrix: expected a mapping of settings, got a number"),
    (
        MINIMAL.replace("https://matrix.example.org/", "ftp://x"),
        "matrix.homeserver: expected an http(s) URL, got 'ftp://x'",
    ),
    (
        MINIMAL.replace("https://matrix.example.org/", "https://"),
        "matrix.homeserver: expected an http(s) URL, got 'https://'",
    ),
    (
        MINIMAL.replace('  homeserver: "https://matrix.example.org/"\n', ""),
        "matrix.homeserver: missing",
    ),
    (MINIMAL.replace('"https://matrix.example.org/"', "8008"), "matrix.homeserver: expected text"),
    (
        MINIMAL.replace('"@commons:example.org"', "commons"),
        "matrix.user_id: expected a Matrix ID like @commons:example.org, got 'commons'",
    ),
    (MINIMAL.replace('"@commons:example.org"', '"@commons"'), "matrix.user_id: expected"),
    (MINIMAL.replace('"@commons:example.org"', '"@a b:x.org"'), "matrix.user_id: expected"),
    (
        MINIMAL.replace('  password: "hunter2-secret"\n', ""),
        "matrix.password: missing; set matrix.password or matrix.access_token"
        f" (or {ENV_PASSWORD} / {ENV_ACCESS_TOKEN} in the environment)",
    ),
    (MINIMAL.replace('"hunter2-secret"', "12345"), "matrix.password: expected text, got a number"),
    (MINIMAL.replace('"hunter2-secret"', '""'), "matrix.password: must not be empty"),
    (MINIMAL + "  device_name: ''\n", "matrix.device_name: must not be empty"),
    (MINIMAL + "  token: x\n", "matrix.token: unknown key"),
    (MINIMAL + "bot:\n  colour: blue\n", "bot.colour: unknown key"),
    (MINIMAL + "bot:\n  data_dirs: x\n", "bot.data_dirs: unknown key (did you mean data_dir?)"),
    (MINIMAL + "bot: [1]\n", "bot: expected a mapping of settings, got a list"),
    (MINIMAL + "bot:\n  data_dir: 5\n", "bot.data_dir: expected text, got a number"),
    (MINIMAL + "bot:\n  data_dir: {a: 1}\n", "bot.data_dir: expected text, got a mapping"),
    (MINIMAL + "bot:\n  data_dir: 2024-01-01\n", "bot.data_dir: expected text, got date"),
    (MINIMAL + "bot:\n  log_level: null\n", "bot.log_level: expected text, got nothing"),
    (MINIMAL + "  device_name: yes\n", "matrix.device_name: expected text, got true/false"),
    (MINIMAL + "bot:\n  command_prefix: ''\n", "bot.command_prefix: must not be empty"),
    (MINIMAL + "bot:\n  command_prefix: '! '\n", "bot.command_prefix: must not contain spaces"),
    (
        MINIMAL + "bot:\n  max_command_age: forever\n",
        "bot.max_command_age: expected a duration from 1s to 30d such as 24h, got 'forever'",
    ),
    (MINIMAL + "bot:\n  max_command_age: 31d\n", "bot.max_command_age: expected a duration"),
    (MINIMAL + "bot:\n  max_command_age: 24\n", "bot.max_command_age: expected text"),
    (MINIMAL + "bot:\n  log_level: LOUD\n", "bot.log_level: expected one of DEBUG, INFO"),
    (MINIMAL + "invites:\n  allowed_servers: localhost\n", "invites.allowed_servers: expected"),
    (
        MINIMAL + "invites:\n  allowed_servers: ['ex ample.org']\n",
        "invites.allowed_servers: expected server names like example.org, got 'ex ample.org'",
    ),
    (MINIMAL + "invites:\n  allowed_users: [alice]\n", "invites.allowed_users: expected Matrix"),
    (
        MINIMAL + "invites:\n  allowed_users: [5]\n",
        "invites.allowed_users: expected a list of text, got a number in it",
    ),
    (MINIMAL + "invites:\n  max_rooms: 0\n", "invites.max_rooms: must be a whole number"),
    (MINIMAL + "invites:\n  max_rooms: '10'\n", "invites.max_rooms: must be a whole number"),
    (MINIMAL + "invites:\n  max_rooms: true\n", "invites.max_rooms: must be a whole number"),
    (MINIMAL + "invites:\n  hosts: []\n", "invites.hosts: unknown key"),
    (
        MINIMAL + "rules:\n  kudos.daily_allowance: 0\n",
        "rules.kudos.daily_allowance: must be a whole number from 1 to 1000",
    ),
    (
        MINIMAL + "rules:\n  kudos:\n    daily_allowance: lots\n",
        "rules.kudos.daily_allowance: must be a whole number from 1 to 1000",
    ),
    (
        MINIMAL + "rules:\n  kudos.daily_alowance: 5\n",
        "rules.kudos.daily_alowance: unknown key (did you mean kudos.daily_allowance?)",
    ),
    (MINIMAL + "rules:\n  kudos:\n    foo: 1\n", "rules.kudos.foo: unknown key"),
    (MINIMAL + "rules:\n  zzz: 1\n", "rules.zzz: unknown key"),
    (MINIMAL + "rules:\n  kudos: 3\n", "rules.kudos: expected a mapping of kudos.* rules"),
    (
        MINIMAL + "rules:\n  kudos.pair_daily_cap: 4\n  kudos:\n    pair_daily_cap: 5\n",
        "rules.kudos.pair_daily_cap: set twice (flat and nested)",
    ),
    (MINIMAL + "rules:\n  report.time: 9:30\n", "rules.report.time: must be a time of day"),
    (
        MINIMAL + "rules:\n  report.time: 10:30\n",
        "rules.report.time: must be a time of day from 00:00 to 23:59, such as 09:00"
        ' (in YAML, put it in quotes: "9:30")',
    ),
    (
        MINIMAL + "rules:\n  timezone: Europe/Pariss\n",
        "rules.timezone: must be an IANA time zone name such as UTC or Europe/Berlin"
        " (did you mean Europe/Paris?)",
    ),
    (MINIMAL + "rules:\n  timezone: Mars/Base\n", "rules.timezone: must be an IANA time zone"),
    (MINIMAL + "rules:\n  1: x\n", "rules.1: keys must be text"),
    (MINIMAL + "rules: [timezone]\n", "rules: expected a mapping of rule keys, got a list"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_bad_configs_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    error = str(info.value)
    assert message in error
    assert "\n" not in error
    assert "hunter2-secret" not in error


def test_yaml_tags_fail_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = MINIMAL + f"bot:\n  data_dir: !!python/object/apply:os.system ['touch {marker}']\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert str(info.value) == (
        f"{path} line 6: not valid YAML (tags such as !!python/object are not allowed;"
        " write plain values)"
    )
    assert not marker.exists()


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "bot:\n  data_dir: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert re.fullmatch(
        rf"{re.escape(str(path))} line \d+: not valid YAML \(.+\)", str(info.value)
    )


def test_missing_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    missing = tmp_path / "config.yaml"
    with pytest.raises(ConfigError, match=r"config\.yaml: not found$"):
        load_config(missing, {})
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path, {})
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(write(tmp_path, b"matrix:\n  homeserver: \xff\n"), {})


def test_unreadable_characters_are_a_yaml_error(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "bot:\n  data_dir: a\x00b\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert str(info.value).startswith(f"{path}: not valid YAML (")
    assert "\n" not in str(info.value)
