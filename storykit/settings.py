"""Settings from the environment (SPEC §6), validated with errors that say what to fix."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from storykit.auth import ApiKey, parse_api_tokens
from storykit.errors import Invalid, NotConfigured
from storykit.paths import find_repo_root, resolve_data_dir
from storykit.webhooks import SECRET_SETTINGS

__all__ = ["ENTRY_POINT_GROUP", "Settings", "SettingsError", "installed_plugins", "select_plugins"]

ENTRY_POINT_GROUP = "storykit"

T = TypeVar("T")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(Invalid):
    """A setting has a value storykit cannot use."""

    title = "Invalid setting"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything storykit reads from its environment. Build with :meth:`from_env`."""

    api_keys: tuple[ApiKey, ...] = ()
    data_dir: Path
    repo_path: Path
    db_path: Path
    database_url: str | None = dataclasses.field(default=None, repr=False)  # holds a password
    """``DATABASE_URL``: PostgreSQL instead of the SQLite file at :attr:`db_path`."""
    redis_url: str | None = dataclasses.field(default=None, repr=False)  # may hold a password
    """``REDIS_URL``: rate limits in Redis instead of the database."""
    sse_queue_max: int = 1000
    sse_heartbeat_interval: float = 15.0
    sse_send_timeout: float = 10.0
    rate_limit_rps: float = 5.0
    rate_limit_burst: int = 10
    log_file: Path | None = None
    log_level: str = "INFO"
    cors_origins: tuple[str, ...] = ()
    pr_backend: str = "dry-run"
    max_body_bytes: int = 5 * 1024 * 1024
    metrics_public: bool = True
    test_mode: bool = False
    hook_timeout: float = 30.0
    load_plugins: tuple[str, ...] | None = None
    """Names of the installed plugins to load; None loads all (``STORYKIT_LOAD_PLUGINS``,
    where ``-name`` entries leave a plugin out)."""
    trace_hooks: bool = False
    policy_urls: tuple[str, ...] = ()
    """The servers a policy document may make a plugin call, as URL prefixes
    (``STORYKIT_POLICY_URLS``). The document, which any admin can edit, only picks
    among them."""
    policy_secrets: tuple[str, ...] = ()
    """The environment variables whose values a policy document may have a plugin
    send, as credentials to those servers (``STORYKIT_POLICY_SECRETS``)."""
    webhook_secrets: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    """Forge → the secret its webhooks are checked with (``STORYKIT_GITHUB_WEBHOOK_SECRET``,
    ``STORYKIT_GITLAB_WEBHOOK_SECRET``, or the file a ``…_FILE`` variable names). No
    default: a forge without one gets no webhooks, and its pull requests are polled."""
    pr_poll_interval: float = 120.0
    """Seconds between two polls of the open pull requests no webhook reports on
    (``STORYKIT_PR_POLL_INTERVAL``; 0 turns polling off)."""
    environ: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    """The environment the settings were read from, for plugins' own options."""

    @property
    def suggestions_dir(self) -> Path:
        return self.data_dir / "suggestions"

    @property
    def plans_dir(self) -> Path:
        return self.data_dir / "plans"

    def webhook_secret(self, forge: str) -> str | None:
        """The secret ``forge``'s webhooks are checked with, or None when none is set."""
        return self.webhook_secrets.get(forge)

    def get(self, name: str, default: str | None = None) -> str | None:
        """A plugin's own option from the environment the settings were read from."""
        return self.environ.get(name, default)

    def check_policy_url(self, url: str, *, field: str = "url") -> None:
        """Refuse a URL from a policy document unless ``STORYKIT_POLICY_URLS`` allows it.

        Plugins call this when the document is saved and again before each call (a
        document saved earlier may no longer be allowed); :class:`Invalid` names the
        setting the operator would change.
        """
        target = _url_parts(url)
        if target is not None:
            for prefix in self.policy_urls:
                allowed = _url_parts(prefix)
                if allowed is not None and _under(target, allowed):
                    return
        raise Invalid(
            f'"{field}" {url} is not a server the operator lets a policy call; allowed:'
            f" {', '.join(self.policy_urls) or 'none'} (STORYKIT_POLICY_URLS; the operator"
            " adds a URL there and restarts storykit)"
        )

    def check_policy_secret(self, name: str, *, field: str = "token_env") -> None:
        """Refuse a variable named in a policy document unless ``STORYKIT_POLICY_SECRETS``
        lists it, so editing the document can never make a plugin send, say, ``API_TOKENS``."""
        if name not in self.policy_secrets:
            raise Invalid(
                f'"{field}" {name} is not a variable the operator lets a policy read; allowed:'
                f" {', '.join(self.policy_secrets) or 'none'} (STORYKIT_POLICY_SECRETS; the"
                " operator adds a name there and restarts storykit)"
            )

    def policy_secret(self, name: str, *, field: str = "token_env") -> str:
        """The value of a variable a policy document named, once :meth:`check_policy_secret`
        allows it; :class:`NotConfigured` if it is not set."""
        self.check_policy_secret(name, field=field)
        value = self.environ.get(name, "").strip()
        if not value:
            raise NotConfigured(f"the environment variable {name} ({field}) is not set")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read and validate the settings; ``overrides`` win over the environment."""
        env = dict(os.environ if environ is None else environ)
        data_dir = resolve_data_dir(_str(overrides.pop("data_dir", None)), environ=env)
        if env.get("REPO_PATH"):
            repo_path = Path(env["REPO_PATH"]).expanduser().resolve()
        else:  # the repository the current directory is in, else the directory itself
            here = Path(os.getcwd()).resolve()
            repo_path = find_repo_root(here) or here
        load = env.get("STORYKIT_LOAD_PLUGINS")
        load_plugins = (
            None
            if load is None
            else tuple(sorted(select_plugins(load.split(","), installed_plugins())))
        )
        values: dict[str, object] = {
            "api_keys": _get(env, "API_TOKENS", parse_api_tokens, "", secret=True),
            "data_dir": data_dir,
            "repo_path": repo_path,
            "db_path": Path(env["DB_PATH"]).expanduser()
            if env.get("DB_PATH")
            else data_dir / "storykit.db",
            "database_url": _database_url(env.get("DATABASE_URL", "").strip()),
            "redis_url": _redis_url(env.get("REDIS_URL", "").strip()),
            "sse_queue_max": _get(env, "SSE_QUEUE_MAX", _positive_int, "1000"),
            "sse_heartbeat_interval": _get(env, "SSE_HEARTBEAT_INTERVAL", _positive_float, "15"),
            "sse_send_timeout": _get(env, "SSE_SEND_TIMEOUT", _positive_float, "10"),
            "rate_limit_rps": _get(env, "RATE_LIMIT_RPS", _positive_float, "5"),
            "rate_limit_burst": _get(env, "RATE_LIMIT_BURST", _positive_int, "10"),
            "log_file": Path(env["LOG_FILE"]).expanduser() if env.get("LOG_FILE") else None,
            "log_level": _get(env, "LOG_LEVEL", _log_level, "INFO"),
            "cors_origins": _get(env, "CORS_ORIGINS", _csv, ""),
            "pr_backend": env.get("PR_BACKEND") or "dry-run",
            "max_body_bytes": _get(env, "MAX_BODY_BYTES", _positive_int, str(5 * 1024 * 1024)),
            "metrics_public": _get(env, "METRICS_PUBLIC", _bool, "true"),
            "test_mode": _get(env, "STORYKIT_TEST_MODE", _bool, "false"),
            "hook_timeout": _get(env, "STORYKIT_HOOK_TIMEOUT", _positive_float, "30"),
            "load_plugins": load_plugins,
            "trace_hooks": _get(env, "STORYKIT_TRACE_HOOKS", _bool, "false"),
            "policy_urls": _get(env, "STORYKIT_POLICY_URLS", _url_prefixes, ""),
            "policy_secrets": _get(env, "STORYKIT_POLICY_SECRETS", _secret_names, ""),
            "webhook_secrets": _webhook_secrets(env),
            "pr_poll_interval": _get(env, "STORYKIT_PR_POLL_INTERVAL", _interval, "120"),
            "environ": env,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def ensure_dirs(self) -> None:
        """Create the data directory and its artifact folders."""
        for path in (self.data_dir, self.suggestions_dir, self.plans_dir, self.db_path.parent):
            path.mkdir(parents=True, exist_ok=True)


def installed_plugins() -> list[str]:
    """The names of the installed plugins (the ``storykit`` entry point group)."""
    return sorted({ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)})


def select_plugins(entries: Iterable[str], installed: Iterable[str]) -> set[str]:
    """Which of ``installed`` to load for ``STORYKIT_LOAD_PLUGINS`` entries.

    ``name`` entries load those plugins only; ``-name`` entries leave a plugin out
    (of the named ones, or of all when no entry names one to load). An entry that
    no installed plugin has is refused, never ignored: a misspelt policy plugin
    that silently did not load would let everything through.
    """
    known = sorted(set(installed))
    wanted: set[str] = set()
    dropped: set[str] = set()
    for entry in (e.strip() for e in entries):
        if entry == "-":
            raise SettingsError(
                "STORYKIT_LOAD_PLUGINS: an entry is '-' with no name; write -NAME to leave"
                " the plugin NAME out"
            )
        if entry:
            (dropped if entry.startswith("-") else wanted).add(entry.removeprefix("-"))
    unknown = sorted((wanted | dropped) - set(known))
    if unknown:
        raise SettingsError(
            f"STORYKIT_LOAD_PLUGINS: no installed plugin is called"
            f" {', '.join(map(repr, unknown))}; installed: {', '.join(known) or 'none'}"
            " (name the plugins to load, or -NAME to leave one out)"
        )
    if wanted:
        return wanted - dropped
    return set(known) - dropped if dropped else set()


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _get(
    env: Mapping[str, str],
    name: str,
    parse: Callable[[str], T],
    default: str,
    *,
    secret: bool = False,
) -> T:
    """``parse`` the variable; a ``secret`` one's value is never shown in the error."""
    raw = env.get(name)
    raw = default if raw is None or raw.strip() == "" else raw.strip()
    try:
        return parse(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}" if secret else f"{name}={raw!r}: {exc}") from None


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("expected a whole number") from None
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("expected a number") from None
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a finite number greater than 0")
    return value


def _interval(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("expected a number of seconds (0 turns it off)") from None
    if not 0 <= value < float("inf"):
        raise ValueError("must be 0 (off) or a finite number of seconds")
    return value


_MIN_SECRET = 16
_SECRET_TEXT = re.compile(r"[!-~](?:[ -~]*[!-~])?")  # printable ASCII, no space at either end


def _webhook_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """Each forge's webhook secret, from its variable or the file its ``…_FILE`` names.

    A secret that cannot be read or used stops start-up; the message never shows it.
    """
    secrets: dict[str, str] = {}
    for forge, name in SECRET_SETTINGS.items():
        value = (env.get(name) or "").strip()
        path = (env.get(f"{name}_FILE") or "").strip()
        if value and path:
            raise SettingsError(f"{name} and {name}_FILE are both set; set one of them")
        where = name
        if path:
            where = f"{name}_FILE={path!r}"
            try:
                value = Path(path).expanduser().read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
                raise SettingsError(f"{where}: cannot read the secret ({reason})") from None
            if not value:
                raise SettingsError(f"{where}: the file is empty")
        if not value:
            continue
        if not _SECRET_TEXT.fullmatch(value):
            raise SettingsError(
                f"{where}: the secret must be printable ASCII (it is sent or used as a header)"
            )
        if len(value) < _MIN_SECRET:
            raise SettingsError(
                f"{where}: the secret is shorter than {_MIN_SECRET} characters; use a long"
                " random one (openssl rand -hex 32) and give the forge the same"
            )
        secrets[forge] = value
    return secrets


def _bool(raw: str) -> bool:
    low = raw.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("expected true or false")


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _database_url(raw: str) -> str | None:
    # Never echo the value: it may hold a password.
    if not raw:
        return None
    if not raw.startswith(("postgresql://", "postgres://")):
        raise SettingsError(
            "DATABASE_URL must be a postgresql:// URL (postgresql://user:password@host/db);"
            " unset it to use SQLite in the data directory"
        )
    return raw


def _redis_url(raw: str) -> str | None:
    # Never echo the value: it may hold a password.
    if not raw:
        return None
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError(
            "REDIS_URL must be a redis://, rediss:// or unix:// URL (redis://host:6379/0);"
            " unset it to keep rate limits in the database"
        )
    return raw


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError("expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Variables that hold storykit's own secrets: no policy may ever send them anywhere.
_NEVER_SECRETS = frozenset({"API_TOKENS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_Url = tuple[str, str, int, str]


def _url_parts(url: str) -> _Url | None:
    """(scheme, host, port, path) of a plain http(s) URL; None for anything else
    (credentials, a query or a fragment in it, no host, another scheme)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if (
        scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
        or any(c.isspace() for c in url.strip())
    ):
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme], parts.path.rstrip("/")


def _under(target: _Url, allowed: _Url) -> bool:
    path, prefix = target[3], allowed[3]
    segments = path.split("/")
    if ".." in segments or "." in segments:
        return False
    within = not prefix or path == prefix or path.startswith(prefix + "/")
    return target[:3] == allowed[:3] and within


def _url_prefixes(raw: str) -> tuple[str, ...]:
    prefixes = _csv(raw)
    for prefix in prefixes:
        if _url_parts(prefix) is None:
            raise ValueError(
                f"{prefix!r} is not an http(s) URL like http://127.0.0.1:8181 (no credentials,"
                " query or fragment)"
            )
    return prefixes


def _secret_names(raw: str) -> tuple[str, ...]:
    names = _csv(raw)
    for name in names:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not the name of an environment variable")
        if name in _NEVER_SECRETS:
            raise ValueError(f"{name} holds storykit's own keys; no policy may send it anywhere")
    return names
