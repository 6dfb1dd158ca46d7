"""Configuration: defaults, the issue's example file, and one-line errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from after.config import ConfigError, load, parse

EXAMPLE = """
[couchdb]
url = "http://127.0.0.1:5984"
database = "after"
user = "after"
password_file = "couchdb.password"
[jobs]
paths = ["/etc/after/jobs.d"]
"""


def test_the_example_file_loads_with_the_password_from_its_file(tmp_path: Path) -> None:
    (tmp_path / "couchdb.password").write_text("s3cret\n")
    (tmp_path / "after.toml").write_text(EXAMPLE)
    config = load(str(tmp_path / "after.toml"))
    assert config.couchdb.user == "after" and config.couchdb.password == "s3cret"
    assert config.worker.concurrency == 4 and str(config.job_paths[0]) == "/etc/after/jobs.d"
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(("data", "message"), [
    ({"couchdb": {"url": "ftp://x"}}, "couchdb.url must start with http:// or https://"),
    ({"couchdb": {"url": "http://u:p@host"}}, "couchdb.url must not contain credentials"),
    ({"couchdb": {"timeout": "soon"}}, "couchdb.timeout has the wrong type (str)"),
    ({"couchdb": {"passwd": "x"}}, "unknown setting couchdb.passwd"),
    ({"worker": {"concurrency": 0}}, "worker.concurrency must be greater than zero"),
    ({"worker": {"concurrency": 2.5}}, "worker.concurrency has the wrong type (float)"),
    ({"worker": {"lease": True}}, "worker.lease has the wrong type (boolean)"),
    ({"jobs": {"paths": "/etc"}}, "jobs.paths has the wrong type (str)"),
    ({"jobz": {}}, "unknown section [jobz]"),
    ({"couchdb": {"password_file": "/nonexistent/secret"}}, "couchdb.password_file /nonexistent/secret"),
])
def test_a_wrong_setting_is_one_line_naming_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse(data)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_named_file_must_exist_but_the_default_may_be_missing(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(str(tmp_path / "missing.toml"))
    monkeypatch.setenv("AFTER_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load(None)
    monkeypatch.delenv("AFTER_CONFIG")
    monkeypatch.setattr("after.config.DEFAULT_PATH", tmp_path / "absent.toml")
    assert load(None).couchdb.url == "http://127.0.0.1:5984"


def test_a_broken_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "after.toml").write_text("[couchdb\nurl=")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(str(tmp_path / "after.toml"))
