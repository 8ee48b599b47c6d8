"""A throwaway Synapse homeserver on loopback, for the integration tests and the local demo.

Rule: this never talks to the outside world. The server binds 127.0.0.1 only, federation is off,
the database is SQLite inside `data_dir`, and users come from the shared-secret admin API. Stdlib
only (subprocess, urllib, hmac, socket) so it works before the bot's own dependencies matter.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

# Synapse's defaults for these are tuned against abuse; tests and the demo send in bursts.
# per_second 0 does not disable a limit in Synapse, so "relaxed" means very large numbers.
_LOOSE = {"per_second": 10000, "burst_count": 10000}
_RELAXED_RATE_LIMITS: dict[str, Any] = {
    "rc_message": _LOOSE,
    "rc_registration": _LOOSE,
    "rc_room_creation": _LOOSE,
    "rc_joins": {"local": _LOOSE, "remote": _LOOSE},
    "rc_joins_per_room": _LOOSE,
    "rc_invites": {"per_room": _LOOSE, "per_user": _LOOSE, "per_issuer": _LOOSE},
    "rc_login": {"address": _LOOSE, "account": _LOOSE, "failed_attempts": _LOOSE},
}


class MatrixRequestError(RuntimeError):
    """A client-server API call that answered with an error (or could not be made)."""

    def __init__(self, message: str, *, status: int = 0, errcode: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode


def request_json(
    base_url: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    access_token: str | None = None,
    timeout: float = 10,
) -> dict[str, Any]:
    """One JSON call to a homeserver; raises MatrixRequestError with the server's errcode."""
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {base_url!r}")
    data = None if body is None else json.dumps(body).encode()
    url = base_url.rstrip("/") + path
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - checked above
    request.add_header("Content-Type", "application/json")
    if access_token:
        request.add_header("Authorization", f"Bearer {access_token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            result: dict[str, Any] = json.loads(response.read() or b"{}")
            return result
    except urllib.error.HTTPError as error:
        raw = error.read().decode(errors="replace")
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            answer = {"error": raw[:200]}
        errcode = str(answer.get("errcode", ""))
        detail = answer.get("error", "")
        raise MatrixRequestError(
            f"{method} {path}: HTTP {error.code} {errcode} {detail}".strip(),
            status=error.code,
            errcode=errcode,
        ) from None
    except (urllib.error.URLError, OSError) as error:
        raise MatrixRequestError(f"{method} {path}: {error}") from None


@dataclass(frozen=True)
class RegisteredUser:
    user_id: str
    password: str
    access_token: str
    device_id: str


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path.name} does not exist)"
    return "\n".join(text.splitlines()[-lines:]) or f"({path.name} is empty)"


class LocalSynapse:
    """Starts and stops one Synapse process whose whole state lives in `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        server_name: str = "localhost",
        relaxed_rate_limits: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port if port is not None else free_port()
        self.server_name = server_name
        self.relaxed_rate_limits = relaxed_rate_limits
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.config_path = self.data_dir / "homeserver.yaml"
        self.log_path = self.data_dir / "homeserver.log"
        self.output_path = self.data_dir / "synapse.out"
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 60) -> None:
        """Start the server and return once it answers the client-server API."""
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Another server on our port would answer the readiness poll while ours fails to bind.
        if _port_in_use(self.port):
            raise RuntimeError(f"port {self.port} on 127.0.0.1 is already in use")
        self._write_config()
        with self.output_path.open("ab") as output:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
                [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C meant for the demo's bot must not kill the server first.
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise RuntimeError(f"Synapse exited with code {code} during start\n{self._logs()}")
            try:
                request_json(self.base_url, "GET", "/_matrix/client/versions", timeout=2)
                return
            except MatrixRequestError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Synapse did not answer within {timeout} s\n{self._logs()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL if the server is still running after `timeout` seconds."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> LocalSynapse:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- users -----------------------------------------------------------------------------------

    def register(
        self, username: str, password: str | None = None, admin: bool = False
    ) -> RegisteredUser:
        """Create a user through the shared-secret API; an existing one is logged in instead."""
        password = password if password is not None else secrets.token_urlsafe(18)
        path = "/_synapse/admin/v1/register"
        nonce = request_json(self.base_url, "GET", path)["nonce"]
        role = "admin" if admin else "notadmin"
        message = "\x00".join([nonce, username, password, role]).encode()
        mac = hmac.new(self._shared_secret().encode(), message, hashlib.sha1).hexdigest()
        body = {"nonce": nonce, "username": username, "password": password, "admin": admin}
        try:
            answer = request_json(self.base_url, "POST", path, {**body, "mac": mac})
        except MatrixRequestError as error:
            if error.errcode != "M_USER_IN_USE":
                raise
            answer = self.login(username, password)
        return RegisteredUser(
            user_id=answer["user_id"],
            password=password,
            access_token=answer["access_token"],
            device_id=answer["device_id"],
        )

    def login(self, username: str, password: str) -> dict[str, Any]:
        """A password login (a new device); the answer holds user_id, access_token, device_id."""
        identifier = {"type": "m.id.user", "user": username}
        body = {"type": "m.login.password", "identifier": identifier, "password": password}
        return request_json(self.base_url, "POST", "/_matrix/client/v3/login", body)

    # -- files -----------------------------------------------------------------------------------

    def _shared_secret(self) -> str:
        # Kept in its own file so a restarted (or re-created) LocalSynapse can still register.
        path = self.data_dir / "registration_shared_secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def _write_config(self) -> None:
        # Rewritten on every start so a changed port or rate-limit choice takes effect; the
        # database, signing key and secret live in their own files and survive.
        data = self.data_dir
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": f"{self.base_url}/",
            "pid_file": str(data / "homeserver.pid"),
            "report_stats": False,
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(data / "homeserver.db")}},
            "media_store_path": str(data / "media_store"),
            "signing_key_path": str(data / f"{self.server_name}.signing.key"),
            "log_config": str(data / "log.config"),
            "registration_shared_secret": self._shared_secret(),
            "enable_registration": False,
            "bcrypt_rounds": 4,
            "federation_domain_whitelist": [],
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "presence": {"enabled": False},
            "enable_metrics": False,
            "url_preview_enabled": False,
        }
        if self.relaxed_rate_limits:
            config.update(_RELAXED_RATE_LIMITS)
        log_config = {
            "version": 1,
            "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
            "handlers": {
                "file": {
                    "class": "logging.handlers.RotatingFileHandler",
                    "formatter": "plain",
                    "filename": str(self.log_path),
                    "maxBytes": 5_000_000,
                    "backupCount": 1,
                    "encoding": "utf8",
                }
            },
            "root": {"level": "WARNING", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
        # JSON is YAML, which keeps this module free of a YAML dependency.
        header = "# Written by bot/devserver.py on every start; edits are overwritten.\n"
        self.config_path.write_text(header + json.dumps(config, indent=2) + "\n")
        self.config_path.chmod(0o600)
        (data / "log.config").write_text(header + json.dumps(log_config, indent=2) + "\n")

    def _logs(self) -> str:
        return (
            f"--- {self.output_path}:\n{_tail(self.output_path)}\n"
            f"--- {self.log_path}:\n{_tail(self.log_path)}"
        )


__all__ = [
    "LocalSynapse",
    "MatrixRequestError",
    "RegisteredUser",
    "free_port",
    "request_json",
]
