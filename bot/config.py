"""The operator's config: YAML in, typed frozen settings out, or one ConfigError naming the key.

Only `yaml.safe_load` reads the file, so tags such as `!!python/object` fail instead of running.
Unknown keys and wrong types are errors everywhere: a typo must not silently fall back to a
default. Secrets may come from the environment, which wins over the file, and never appear in a
repr or an error. Rule values go through the same registry as `!propose rule`, so the config can
only set values a room could have voted for.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import yaml

from consensus.durations import (
    DAY_MS,
    MINUTE_MS,
    SECOND_MS,
    DurationError,
    format_duration,
    parse_duration,
)
from consensus.rules import RULES, RoomRules, RuleError, RuleValue, default_rules

# Names of environment variables, not secrets.
ENV_PASSWORD = "COMMONS_MATRIX_PASSWORD"  # noqa: S105
ENV_ACCESS_TOKEN = "COMMONS_MATRIX_ACCESS_TOKEN"  # noqa: S105
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_COMMAND_AGE_RANGE = (SECOND_MS, 30 * DAY_MS)
MAX_ROOMS_RANGE = (1, 100_000)

_SERVER = r"(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,255})(?::[0-9]{1,5})?"
_SERVER_NAME = re.compile(_SERVER)
# Localparts exclude ":" and whitespace; historical IDs may use any other printable ASCII.
_MXID = re.compile(r"@[\x21-\x39\x3b-\x7e]+:" + _SERVER)

RuleSource = Literal["default", "config"]


class ConfigError(Exception):
    """A bad config: one line, starting with the key (or the file) it is about."""


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _unknown(where: str, key: str, known: Iterable[str]) -> ConfigError:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ConfigError(f"{where}{key}: unknown key{hint}")


@dataclass(frozen=True, repr=False)
class MatrixConfig:
    """How the bot logs in. With both a token and a password, the token is used."""

    homeserver: str
    user_id: str
    password: str | None
    access_token: str | None
    device_name: str = "commons"

    def __repr__(self) -> str:
        # Configs end up in logs and tracebacks; secrets must not.
        def secret(value: str | None) -> str:
            return "None" if value is None else "'<hidden>'"

        return (
            f"MatrixConfig(homeserver={self.homeserver!r}, user_id={self.user_id!r},"
            f" password={secret(self.password)}, access_token={secret(self.access_token)},"
            f" device_name={self.device_name!r})"
        )

    __str__ = __repr__

    @property
    def server_name(self) -> str:
        return self.user_id.split(":", 1)[1]


@dataclass(frozen=True)
class BotSettings:
    data_dir: Path
    command_prefix: str = "!"
    max_command_age_ms: int = 24 * 60 * MINUTE_MS
    log_level: str = "INFO"


@dataclass(frozen=True)
class InviteSettings:
    allowed_servers: tuple[str, ...]
    allowed_users: tuple[str, ...] = ()
    max_rooms: int = 100

    def may_invite(self, user_id: str) -> bool:
        """A non-empty allowed_users list decides alone; otherwise the inviter's server does."""
        if self.allowed_users:
            return user_id in self.allowed_users
        return user_id.partition(":")[2] in self.allowed_servers


@dataclass(frozen=True)
class Config:
    matrix: MatrixConfig
    bot: BotSettings
    invites: InviteSettings
    rules: Mapping[str, RuleValue] = field(default_factory=dict)
    """Canonical values of the rules the operator set; the others keep their defaults."""
    path: Path = Path("config.yaml")

    def starting_rules(self) -> RoomRules:
        """The rules a room starts with: the defaults overlaid with the config's."""
        return RoomRules({**default_rules(), **self.rules})

    def rule_source(self, key: str) -> RuleSource:
        if key not in RULES:
            raise KeyError(key)
        return "config" if key in self.rules else "default"


class _Section:
    """One mapping of the file: refuses unknown keys and hands out values by name."""

    def __init__(self, name: str, raw: object, known: tuple[str, ...]) -> None:
        self.name = name
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{name}: expected a mapping of settings, got {_kind(raw)}")
        for key in raw:
            if key not in known:
                raise _unknown(f"{name}.", str(key), known)
        self.raw: dict[str, object] = raw

    def key(self, key: str) -> str:
        return f"{self.name}.{key}"

    def optional_text(self, key: str) -> str | None:
        value = self.raw.get(key)
        return None if value is None else self.text(key, "")

    def text(self, key: str, default: str | None = None) -> str:
        """The text at `key`, `default` when absent; missing is an error without a default."""
        if key not in self.raw and default is None:
            raise ConfigError(f"{self.key(key)}: missing")
        value = self.raw.get(key, default)
        if not isinstance(value, str):
            raise ConfigError(f"{self.key(key)}: expected text, got {_kind(value)}")
        if not value.strip():
            raise ConfigError(f"{self.key(key)}: must not be empty")
        return value

    def texts(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.raw.get(key, list(default))
        if not isinstance(value, list):
            raise ConfigError(f"{self.key(key)}: expected a list of text, got {_kind(value)}")
        for item in value:
            if not isinstance(item, str):
                raise ConfigError(
                    f"{self.key(key)}: expected a list of text, got {_kind(item)} in it"
                )
        return tuple(value)


def _read_yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise ConfigError(
            f"{path} line {line}: not valid YAML (tags such as !!python/object are not allowed;"
            " write plain values)"
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path} line {mark.line + 1}" if mark else str(path)
        problem = " ".join(str(exc.problem or exc.context or "syntax error").split())
        raise ConfigError(f"{where}: not valid YAML ({problem})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None


def _matrix(raw: object, env: Mapping[str, str]) -> MatrixConfig:
    fields = ("homeserver", "user_id", "password", "access_token", "device_name")
    section = _Section("matrix", raw, fields)
    homeserver = section.text("homeserver")
    url = urlsplit(homeserver)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ConfigError(f"matrix.homeserver: expected an http(s) URL, got {_shown(homeserver)}")
    user_id = section.text("user_id")
    if len(user_id) > 255 or not _MXID.fullmatch(user_id):
        raise ConfigError(
            f"matrix.user_id: expected a Matrix ID like @commons:example.org,"
            f" got {_shown(user_id)}"
        )
    password = env.get(ENV_PASSWORD) or section.optional_text("password")
    access_token = env.get(ENV_ACCESS_TOKEN) or section.optional_text("access_token")
    if password is None and access_token is None:
        raise ConfigError(
            f"matrix.password: missing; set matrix.password or matrix.access_token"
            f" (or {ENV_PASSWORD} / {ENV_ACCESS_TOKEN} in the environment)"
        )
    device_name = section.text("device_name", "commons")
    return MatrixConfig(homeserver.rstrip("/"), user_id, password, access_token, device_name)


def _bot(raw: object, base: Path) -> BotSettings:
    section = _Section("bot", raw, ("data_dir", "command_prefix", "max_command_age", "log_level"))
    data_dir = Path(section.text("data_dir", "./data")).expanduser()
    prefix = section.text("command_prefix", "!")
    if any(char.isspace() for char in prefix):
        raise ConfigError(f"bot.command_prefix: must not contain spaces, got {_shown(prefix)}")
    low, high = MAX_COMMAND_AGE_RANGE
    age_text = section.text("max_command_age", "24h")
    problem = (
        f"bot.max_command_age: expected a duration from {format_duration(low)} to"
        f" {format_duration(high)} such as 24h, got {_shown(age_text)}"
    )
    try:
        age = parse_duration(age_text)
    except DurationError:
        raise ConfigError(problem) from None
    if not low <= age <= high:
        raise ConfigError(problem)
    level = section.text("log_level", "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"bot.log_level: expected one of {', '.join(LOG_LEVELS)}")
    return BotSettings(base / data_dir, prefix, age, level)


def _invites(raw: object, own_server: str) -> InviteSettings:
    section = _Section("invites", raw, ("allowed_servers", "allowed_users", "max_rooms"))
    servers = section.texts("allowed_servers", (own_server,))
    for server in servers:
        if not _SERVER_NAME.fullmatch(server):
            raise ConfigError(
                f"invites.allowed_servers: expected server names like example.org,"
                f" got {_shown(server)}"
            )
    users = section.texts("allowed_users", ())
    for user in users:
        if not _MXID.fullmatch(user):
            raise ConfigError(
                f"invites.allowed_users: expected Matrix IDs like @alice:example.org,"
                f" got {_shown(user)}"
            )
    max_rooms = section.raw.get("max_rooms", 100)
    low, high = MAX_ROOMS_RANGE
    if (
        isinstance(max_rooms, bool)
        or not isinstance(max_rooms, int)
        or not low <= max_rooms <= high
    ):
        raise ConfigError(f"invites.max_rooms: must be a whole number from {low} to {high}")
    return InviteSettings(servers, users, max_rooms)


def _rules(raw: object) -> dict[str, RuleValue]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"rules: expected a mapping of rule keys, got {_kind(raw)}")
    groups = {key.rpartition(".")[0] for key in RULES} - {""}
    found: dict[str, object] = {}

    def walk(prefix: str, mapping: dict[object, object]) -> None:
        for key, value in mapping.items():
            name = f"{prefix}{key}"
            if not isinstance(key, str):
                raise ConfigError(f"rules.{name}: keys must be text")
            if name in RULES:
                if name in found:
                    raise ConfigError(f"rules.{name}: set twice (flat and nested)")
                found[name] = value
            elif name in groups and isinstance(value, dict):
                walk(f"{name}.", value)
            elif name in groups and value is None:
                continue  # a group whose settings are all commented out
            elif name in groups:
                raise ConfigError(
                    f"rules.{name}: expected a mapping of {name}.* rules, got {_kind(value)}"
                )
            else:
                raise _unknown("rules.", name, RULES)

    walk("", raw)
    values: dict[str, RuleValue] = {}
    for key, value in found.items():
        try:
            values[key] = RULES[key].parse(value)
        except RuleError as exc:
            # "<key> must be ... ." becomes "rules.<key>: must be ...", keeping any hint.
            problem = str(exc).removeprefix(f"{key} ").removesuffix(".")
            raise ConfigError(f"rules.{key}: {problem}") from None
    # The table order, so the canonical JSON and listings read the same as the docs.
    return {key: values[key] for key in RULES if key in values}


def load_config(path: Path, env: Mapping[str, str]) -> Config:
    """Read and check the config at `path`; secrets in `env` win over the file."""
    path = path.absolute()
    raw = _read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with matrix, bot, invites and rules")
    known = ("matrix", "bot", "invites", "rules")
    for key in raw:
        if key not in known:
            raise _unknown("", str(key), known)
    if raw.get("matrix") is None:
        raise ConfigError("matrix: missing (homeserver, user_id and a password or access_token)")
    matrix = _matrix(raw["matrix"], env)
    return Config(
        matrix=matrix,
        bot=_bot(raw.get("bot"), path.parent),
        invites=_invites(raw.get("invites"), matrix.server_name),
        rules=_rules(raw.get("rules")),
        path=path,
    )


def _yaml_scalar(value: RuleValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    # A JSON string is a valid YAML double-quoted scalar, and quoting keeps "off" and "09:00" text.
    return json.dumps(value, ensure_ascii=False)


def rules_example_yaml() -> str:
    """The `rules:` block of config.example.yaml: every rule, commented out with its default."""
    blocks = [
        f"  # {spec.description}\n  # (valid: {spec.requirement})\n"
        f"  # {spec.key}: {_yaml_scalar(spec.default)}\n"
        for spec in RULES.values()
    ]
    return "rules:\n" + "\n".join(blocks)
