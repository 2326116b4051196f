"""Settings read from the environment, validated once at start-up.

Every variable is named ``LIEBIAN_*``. A bad value raises :class:`SettingsError`, which
names the variable and the fix; the CLI prints it as one line instead of a traceback.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_PUBLIC_URL",
    "DEFAULT_WECHAT_API_BASE",
    "Settings",
    "SettingsError",
    "check_public_base_url",
    "load_settings",
]

DEFAULT_DATABASE_URL = "sqlite:///./var/liebian.db"
# Where share links, poster QR codes and signed poster URLs point when LIEBIAN_PUBLIC_URL is
# unset (``liebian serve`` uses its own bind address instead; see server/cli.py).
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
MAX_PUBLIC_URL_LENGTH = 200
DEFAULT_WECHAT_API_BASE = "https://api.weixin.qq.com"


class SettingsError(ValueError):
    """A configuration variable has a value the service cannot use."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    # LIEBIAN_REDIS_CLUSTER=1 or a redis+cluster:// URL: the Redis is a Redis Cluster.
    redis_cluster: bool = False
    # The pub/sub channel on which nodes of one deployment announce cache invalidations.
    redis_channel: str = "liebian:invalidate"
    secret_key: str = ""
    pool_size: int = 20
    log_requests: bool = True
    deliver_webhooks: bool = True
    webhook_allow_private: bool = False
    webhook_timeout: int = 10  # seconds per delivery attempt: DNS + connect + send + read
    # LIEBIAN_PUBLIC_URL without a trailing slash; None when unset (see public_base_url).
    public_url: str | None = None
    rate_limits: bool = True
    public_rate_limit_per_minute: int = 600
    trusted_proxies: str = ""
    poster_workers: int = 2  # render processes; 0 renders in a thread (no deadline)
    poster_deadline_ms: int = 5000  # a render past this is killed; a worker is waited for as long
    poster_worker_mb: int = 1024  # address-space cap of one render process
    wechat_api_base: str = DEFAULT_WECHAT_API_BASE  # configured, never tenant-controlled
    # Whether LIEBIAN_SECRET_KEY was set (else secret_key is random per process).
    secret_key_configured: bool = False

    @property
    def public_base_url(self) -> str:
        """The base of every public URL the service hands out; never the request's Host."""
        return self.public_url or DEFAULT_PUBLIC_URL

    @property
    def engine(self) -> str:
        """``"sqlite"`` or ``"postgres"``."""
        return "sqlite" if self.database_url.startswith("sqlite:") else "postgres"

    @property
    def sqlite_path(self) -> Path:
        """The file behind a ``sqlite:///path`` URL (relative paths are relative to the cwd)."""
        return Path(self.database_url.removeprefix("sqlite:///").removeprefix("sqlite://"))


def _check_database_url(url: str) -> str:
    var = "LIEBIAN_DATABASE_URL"
    if url.startswith("sqlite:"):
        if not url.startswith("sqlite:///") or url == "sqlite:///":
            raise SettingsError(var, f"{url!r} is not sqlite:///path/to/file.db")
        _check_relative_sqlite_path(url.removeprefix("sqlite:///"))
        return url
    parts = urlsplit(url)
    if parts.scheme in {"postgres", "postgresql"}:
        if not parts.hostname and "host=" not in (parts.query or ""):
            raise SettingsError(var, f"{url!r} names no host; use postgresql://user@host:5432/db")
        return url
    raise SettingsError(
        var, f"{url!r} is neither sqlite:///path nor postgresql://user@host:port/db"
    )


def check_public_base_url(url: str) -> str:
    """An absolute http(s) URL without credentials, query or fragment, at most 200 characters;
    returned without its trailing slash. Raise ValueError saying what is wrong."""
    if len(url) > MAX_PUBLIC_URL_LENGTH:
        raise ValueError(f"is longer than {MAX_PUBLIC_URL_LENGTH} characters")
    if not url.isascii() or not url.isprintable() or " " in url:
        raise ValueError("must be ASCII without spaces (write a Chinese domain in punycode)")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise ValueError(f"{url!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an absolute http(s) URL such as https://go.example.com")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError("must have no query (?...) or fragment (#...)")
    del port
    return url.rstrip("/")


def _check_public_url(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return check_public_base_url(url)
    except ValueError as exc:
        raise SettingsError("LIEBIAN_PUBLIC_URL", str(exc)) from None


def _check_relative_sqlite_path(path: str) -> None:
    """A relative path is relative to the working directory (the project) and must stay inside
    it: ``sqlite:///../x.db`` would silently create a database somewhere else."""
    if path == ":memory:" or Path(path).is_absolute():
        return
    project = Path.cwd().resolve()
    resolved = (project / path).resolve()
    if not resolved.is_relative_to(project):
        raise SettingsError(
            "LIEBIAN_DATABASE_URL",
            f"the relative SQLite path {path!r} leads outside the working directory {project} "
            f"(to {resolved}); use an absolute path: sqlite:///{resolved}",
        )


_REDIS_SCHEMES = {"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"}


def _check_redis_url(url: str | None) -> str | None:
    if not url:
        return None
    if urlsplit(url).scheme not in _REDIS_SCHEMES:
        raise SettingsError(
            "LIEBIAN_REDIS_URL",
            f"{url!r} is neither redis://host:port/db nor redis+cluster://host:port",
        )
    return url


def _check_channel(raw: str) -> str:
    if not 1 <= len(raw) <= 100 or not raw.isascii() or not raw.isprintable() or " " in raw:
        raise SettingsError(
            "LIEBIAN_REDIS_CHANNEL", "must be 1..100 printable ASCII characters without spaces"
        )
    return raw


def _check_wechat_base(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query:
        raise SettingsError(
            "LIEBIAN_WECHAT_API_BASE", f"{url!r} is not an http(s)://host[:port][/path] URL"
        )
    return url.rstrip("/")


def _int(env: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(name, f"{raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise SettingsError(name, f"{value} is outside {low}..{high}")
    return value


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw not in {"0", "1", "true", "false", "yes", "no"}:
        raise SettingsError(name, f"{raw!r} is not 1/0/true/false")
    return raw in {"1", "true", "yes"}


def _check_proxies(raw: str) -> str:
    for part in raw.split(","):
        try:
            if part.strip():
                ipaddress.ip_network(part.strip(), strict=False)
        except ValueError:
            raise SettingsError(
                "LIEBIAN_TRUSTED_PROXIES",
                f"{part.strip()!r} is not an IP address or network such as 10.0.0.0/8",
            ) from None
    return raw


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read and validate ``LIEBIAN_*`` variables; raise :class:`SettingsError` on a bad one."""
    env = dict(os.environ if environ is None else environ)
    secret = env.get("LIEBIAN_SECRET_KEY", "")
    if secret and len(secret) < 16:
        raise SettingsError("LIEBIAN_SECRET_KEY", "must be at least 16 characters long")
    log_raw = env.get("LIEBIAN_LOG_REQUESTS", "1").lower()
    if log_raw not in {"0", "1", "true", "false", "yes", "no"}:
        raise SettingsError("LIEBIAN_LOG_REQUESTS", f"{log_raw!r} is not 1/0/true/false")
    redis_url = _check_redis_url(env.get("LIEBIAN_REDIS_URL"))
    return Settings(
        database_url=_check_database_url(env.get("LIEBIAN_DATABASE_URL") or DEFAULT_DATABASE_URL),
        redis_url=redis_url,
        redis_cluster=_bool(env, "LIEBIAN_REDIS_CLUSTER", False)
        or (redis_url or "").split(":", 1)[0].endswith("+cluster"),
        redis_channel=_check_channel(env.get("LIEBIAN_REDIS_CHANNEL") or "liebian:invalidate"),
        # Without a configured secret, signed poster URLs use a per-process key: they still work,
        # but do not survive a restart. Production sets LIEBIAN_SECRET_KEY.
        secret_key=secret or secrets.token_urlsafe(32),
        pool_size=_int(env, "LIEBIAN_DB_POOL_SIZE", 20, 1, 500),
        log_requests=log_raw in {"1", "true", "yes"},
        deliver_webhooks=env.get("LIEBIAN_DELIVER_WEBHOOKS", "1").lower() in {"1", "true", "yes"},
        webhook_allow_private=env.get("LIEBIAN_WEBHOOK_ALLOW_PRIVATE", "0").lower()
        in {"1", "true", "yes"},
        webhook_timeout=_int(env, "LIEBIAN_WEBHOOK_TIMEOUT", 10, 1, 300),
        public_url=_check_public_url(env.get("LIEBIAN_PUBLIC_URL")),
        rate_limits=_bool(env, "LIEBIAN_RATE_LIMITS", True),
        public_rate_limit_per_minute=_int(
            env, "LIEBIAN_PUBLIC_RATE_LIMIT_PER_MINUTE", 600, 1, 1_000_000
        ),
        trusted_proxies=_check_proxies(env.get("LIEBIAN_TRUSTED_PROXIES", "")),
        poster_workers=_int(env, "LIEBIAN_POSTER_WORKERS", 2, 0, 64),
        poster_deadline_ms=_int(env, "LIEBIAN_POSTER_DEADLINE_MS", 5000, 100, 600_000),
        poster_worker_mb=_int(env, "LIEBIAN_POSTER_WORKER_MB", 1024, 256, 65_536),
        secret_key_configured=bool(secret),
        wechat_api_base=_check_wechat_base(
            env.get("LIEBIAN_WECHAT_API_BASE") or DEFAULT_WECHAT_API_BASE
        ),
    )
