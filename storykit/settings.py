"""Settings from the environment (SPEC §6), validated with errors that say what to fix."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from storykit.auth import ApiKey, parse_api_tokens
from storykit.errors import Invalid
from storykit.paths import resolve_data_dir

__all__ = ["Settings", "SettingsError"]

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
    """Names of the installed plugins to load; None loads all (``STORYKIT_LOAD_PLUGINS``)."""
    trace_hooks: bool = False
    environ: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    """The environment the settings were read from, for plugins' own options."""

    @property
    def suggestions_dir(self) -> Path:
        return self.data_dir / "suggestions"

    @property
    def plans_dir(self) -> Path:
        return self.data_dir / "plans"

    def get(self, name: str, default: str | None = None) -> str | None:
        """A plugin's own option from the environment the settings were read from."""
        return self.environ.get(name, default)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read and validate the settings; ``overrides`` win over the environment."""
        env = dict(os.environ if environ is None else environ)
        data_dir = resolve_data_dir(_str(overrides.pop("data_dir", None)), environ=env)
        repo_path = Path(env.get("REPO_PATH") or os.getcwd()).expanduser().resolve()
        load = env.get("STORYKIT_LOAD_PLUGINS")
        values: dict[str, object] = {
            "api_keys": _get(env, "API_TOKENS", parse_api_tokens, ""),
            "data_dir": data_dir,
            "repo_path": repo_path,
            "db_path": Path(env["DB_PATH"]).expanduser()
            if env.get("DB_PATH")
            else data_dir / "storykit.db",
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
            "load_plugins": None if load is None else _csv(load),
            "trace_hooks": _get(env, "STORYKIT_TRACE_HOOKS", _bool, "false"),
            "environ": env,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def ensure_dirs(self) -> None:
        """Create the data directory and its artifact folders."""
        for path in (self.data_dir, self.suggestions_dir, self.plans_dir, self.db_path.parent):
            path.mkdir(parents=True, exist_ok=True)


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _get(env: Mapping[str, str], name: str, parse: Callable[[str], T], default: str) -> T:
    raw = env.get(name)
    raw = default if raw is None or raw.strip() == "" else raw.strip()
    try:
        return parse(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}") from None


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


def _bool(raw: str) -> bool:
    low = raw.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("expected true or false")


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError("expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level
