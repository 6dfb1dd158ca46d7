"""systemctl: unit names and argv for the service verbs, and parsers for systemctl's output. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from after.core.task import NAME_RE

TEMPLATE = "after@.service"
UMBRELLA = "after.service"
PATTERN = "after@*.service"
# Properties `after start` and `after list` read with `systemctl show`.
STATE = ("Id", "LoadState", "ActiveState", "SubState", "Result", "MainPID", "ExecMainCode", "ExecMainStatus")


class InvalidName(ValueError):
    pass


def unit_name(worker: str) -> str:
    """after@NAME.service; a worker name is 1-64 of [A-Za-z0-9_.-] (DESIGN.md section 1)."""
    if not NAME_RE.match(worker) or worker in (".", ".."):
        raise InvalidName(
            f"invalid worker name {worker!r}: use 1 to 64 letters, digits, '_', '.' or '-'"
        )
    return f"after@{worker}.service"


def worker_name(unit: str) -> str:
    """The instance name of after@NAME.service."""
    return unit.removeprefix("after@").removesuffix(".service")


def start(units: Sequence[str], enable: bool = False) -> list[str]:
    """Start (and with ``enable``, also enable at boot); blocks until READY=1 or failure (Type=notify)."""
    return ["systemctl", "enable", "--now", *units] if enable else ["systemctl", "start", *units]


def stop(units: Sequence[str], disable: bool = False) -> list[str]:
    return ["systemctl", "disable", "--now", *units] if disable else ["systemctl", "stop", *units]


def show(units: Sequence[str], properties: Iterable[str] = STATE) -> list[str]:
    return ["systemctl", "show", f"--property={','.join(properties)}", *units]


def list_units(pattern: str = PATTERN) -> list[str]:
    """Every loaded after@ instance, running or not, one per line: NAME LOAD ACTIVE SUB DESCRIPTION."""
    return ["systemctl", "list-units", "--all", "--plain", "--no-legend", "--no-pager", "--full", pattern]


def parse_show(text: str) -> list[dict[str, str]]:
    """`systemctl show` output: one KEY=VALUE block per unit, blocks separated by blank lines."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if current:
                blocks.append(current)
            current = {}
            continue
        key, _, value = line.partition("=")
        current[key] = value
    return blocks


def parse_list_units(text: str) -> list[str]:
    """Unit names from `systemctl list-units --plain --no-legend` (a leading status mark is skipped)."""
    names = []
    for line in text.splitlines():
        fields = [field for field in line.split() if field not in ("●", "*")]
        if fields and fields[0].startswith("after@") and fields[0].endswith(".service"):
            names.append(fields[0])
    return names


def is_active(state: Mapping[str, str]) -> bool:
    return state.get("ActiveState") in ("active", "reloading")


def failure_reason(state: Mapping[str, str]) -> str:
    """One line on why a unit is not active, from its `systemctl show` properties."""
    result = state.get("Result", "")
    active = f"{state.get('ActiveState', '?')} ({state.get('SubState', '?')})"
    code, status = state.get("ExecMainCode", ""), state.get("ExecMainStatus", "")
    reasons = {
        "exit-code": f"the worker exited with status {status}",
        "signal": f"the worker was killed by signal {status}",
        "core-dump": f"the worker dumped core (signal {status})",
        "watchdog": "the watchdog timed out (the worker stopped making progress)",
        "timeout": "it did not report READY in time",
        "start-limit-hit": "it was restarted too often (see: systemctl reset-failed)",
        "exec-condition": "an ExecCondition= failed",
        "resources": "systemd could not set up its resources (user, directories, config)",
    }
    reason = reasons.get(result, f"result {result or 'unknown'}")
    if result == "exit-code" and code == "2":  # CLD_KILLED: systemd numbers ExecMainCode as si_code
        reason = f"the worker was killed by signal {status}"
    return f"{active}: {reason}"
