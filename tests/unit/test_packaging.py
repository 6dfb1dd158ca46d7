"""The files the package and `make install` ship stay in step with the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from after import __version__

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("shell", "path"),
    [
        ("bash", "completion/bash/after"),
        ("zsh", "completion/zsh/_after"),
        ("fish", "completion/fish/after.fish"),
    ],
)
def test_completion_scripts_are_what_typer_generates(shell: str, path: str) -> None:
    """Regenerate with: .venv/bin/after --show-completion SHELL > PATH."""
    generated = subprocess.run(
        [sys.executable, "-c", "from after.cli import main; main()", "--show-completion", shell],
        capture_output=True, text=True, check=True,
    ).stdout
    assert generated == (ROOT / path).read_text()


def test_the_debian_sysusers_file_is_the_one_make_install_ships() -> None:
    debian = (ROOT / "packaging/debian/after.sysusers").read_text()
    assert debian == (ROOT / "systemd/after.sysusers").read_text()


def test_the_package_version_follows_the_code() -> None:
    version = subprocess.run(
        [sys.executable, str(ROOT / "packaging/debversion.py")], capture_output=True, text=True, check=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout.strip()
    assert version == __version__
    changelog = subprocess.run(
        [sys.executable, str(ROOT / "packaging/debversion.py"), "changelog", f"{__version__}+1"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert changelog.startswith(f"after ({__version__}+1) unstable; urgency=medium")


def test_the_unit_runs_the_worker_for_the_instance() -> None:
    unit = (ROOT / "systemd/after@.service").read_text()
    assert "ExecStart=/usr/bin/after run %i\n" in unit
    assert "Type=notify\n" in unit and "PartOf=after.service\n" in unit
