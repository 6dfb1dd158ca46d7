"""Configuration: one TOML file (``--config``, ``AFTER_CONFIG``, default /etc/after/after.toml)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from after.core.missed import Missed

DEFAULT_PATH = Path("/etc/after/after.toml")


class ConfigError(Exception):
    """A missing or wrong setting; the message is one line that names the key."""


@dataclass(frozen=True)
class CouchConfig:
    urls: tuple[str, ...] = ("http://127.0.0.1:5984",)  # nodes of one cluster; the first is used first
    database: str = "after"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0

    @property
    def url(self) -> str:
        return self.urls[0]


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int = 4
    horizon: float = 300.0  # seconds of future tasks kept in memory
    lease: float = 60.0  # a claim expires this long after its last renewal
    claim_ahead: float = 1.0  # claim a task this long before its date, to start it on time
    default_timeout: float = 3600.0
    grace: float = 30.0  # on stop, running jobs get this long to finish
    output_limit: int = 4096  # characters of job output kept in the document
    history_limit: int = 10
    missed: Missed = Missed.RUN_ONCE  # for repeating tasks that do not say (their ``missed``)
    missed_grace: float = 300.0  # seconds; for tasks that do not say (their ``grace``)
    runtime_dir: str = ""  # start journals; "": $RUNTIME_DIRECTORY, /run/after or $TMPDIR/after-<uid>


@dataclass(frozen=True)
class Config:
    couchdb: CouchConfig = field(default_factory=CouchConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    job_paths: tuple[Path, ...] = (Path("/etc/after/jobs.d"),)
    source: Path | None = None


def config_path(option: str | None) -> tuple[Path, bool]:
    """The file to read and whether the user named it (a named file must exist)."""
    if option:
        return Path(option), True
    if os.environ.get("AFTER_CONFIG"):
        return Path(os.environ["AFTER_CONFIG"]), True
    return DEFAULT_PATH, False


def load(option: str | None = None) -> Config:
    path, named = config_path(option)
    if not path.exists():
        if named:
            raise ConfigError(f"config file {path} does not exist")
        return Config()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    return parse(data, path)


def parse(data: dict[str, Any], source: Path | None = None) -> Config:
    known = {"couchdb", "worker", "jobs"}
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown section [{key}] in config (known: couchdb, worker, jobs)")
    couch = section(data, "couchdb")
    worker = section(data, "worker")
    jobs = section(data, "jobs")
    return Config(
        couchdb=parse_couch(couch, source),
        worker=parse_worker(worker),
        job_paths=tuple(Path(item) for item in typed(jobs, "jobs.paths", list, ["/etc/after/jobs.d"])),
        source=source,
    )


def section(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a table ([{name}])")
    return value


def typed(table: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{key} has the wrong type (boolean)")
    if not isinstance(value, kind):
        raise ConfigError(f"{key} has the wrong type ({type(value).__name__})")
    return value


def parse_couch(table: dict[str, Any], source: Path | None) -> CouchConfig:
    check_keys(table, "couchdb", {"url", "urls", "database", "user", "password", "password_file", "timeout"})
    if "url" in table and "urls" in table:
        raise ConfigError("give couchdb.url or couchdb.urls, not both")
    if "urls" in table:
        urls = typed(table, "couchdb.urls", list, [])
        if not urls or not all(isinstance(url, str) for url in urls):
            raise ConfigError("couchdb.urls must be a list of one or more URLs (the nodes of one cluster)")
        key = "couchdb.urls"
    else:
        urls, key = [typed(table, "couchdb.url", str, CouchConfig().url)], "couchdb.url"
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{key} must start with http:// or https://")
        if "@" in url.split("//", 1)[1].split("/", 1)[0]:
            raise ConfigError(f"{key} must not contain credentials; use couchdb.user and password_file")
    return CouchConfig(
        urls=tuple(url.rstrip("/") for url in urls),
        database=typed(table, "couchdb.database", str, CouchConfig.database),
        user=typed(table, "couchdb.user", (str, type(None)), None),
        password=read_password(table, source),
        timeout=float(typed(table, "couchdb.timeout", (int, float), CouchConfig.timeout)),
    )


def read_password(table: dict[str, Any], source: Path | None) -> str | None:
    if "password" in table:
        return str(typed(table, "couchdb.password", str, ""))
    if "password_file" not in table:
        return os.environ.get("AFTER_COUCHDB_PASSWORD")
    path = Path(typed(table, "couchdb.password_file", str, ""))
    if not path.is_absolute() and source is not None:
        path = source.parent / path
    try:
        return path.read_text().strip()
    except OSError as error:
        raise ConfigError(f"couchdb.password_file {path} cannot be read: {error.strerror}") from None


def parse_worker(table: dict[str, Any]) -> WorkerConfig:
    defaults = WorkerConfig()
    check_keys(table, "worker", set(defaults.__dataclass_fields__))
    values: dict[str, Any] = {}
    for name in defaults.__dataclass_fields__:
        default = getattr(defaults, name)
        if isinstance(default, Missed):
            value = typed(table, f"worker.{name}", str, default.value)
            if value not in set(Missed):
                raise ConfigError(f"worker.{name} must be one of " + ", ".join(sorted(Missed)))
            values[name] = Missed(value)
            continue
        if isinstance(default, str):
            values[name] = typed(table, f"worker.{name}", str, default)
            continue
        kind: tuple[type, ...] = (int,) if isinstance(default, int) else (int, float)
        value = typed(table, f"worker.{name}", kind, default)
        if value <= 0:
            raise ConfigError(f"worker.{name} must be greater than zero")
        values[name] = type(default)(value)
    return WorkerConfig(**values)


def check_keys(table: dict[str, Any], name: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"unknown setting {name}.{key} (known: {', '.join(sorted(allowed))})")
