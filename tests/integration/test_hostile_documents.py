"""Hostile documents against real `after run` processes, on Apache CouchDB and pouchdb-server (issue 7).

A few hundred documents from ``tests.hostile`` (a fixed sample: the same on every run) are written as a
client would send them, as raw JSON in ``_bulk_docs`` (one by one when the server refuses a whole
batch), half before the worker starts and half while it runs. Then:

- validation on: every document is refused at write with a reason (403, pouchdb-server 401), the same
  that ``after.core.task.validate`` gives (one table on both sides), or it is accepted and ends as the oracle
  says (``tests.hostile.expect``): ``done`` with its job run once, ``err`` with a reason and no job run,
  ``canceled``, or untouched; a server may also refuse what it cannot store at all (CouchDB: lone
  surrogates, 400);
- validation off: everything the server stores reaches the worker, and every invalid task ends ``err``;
- the worker process stays alive, logs no traceback, and a fresh task runs within ``LATENESS`` of its date.

Documents that end otherwise than the table says for a known reason (``tests.hostile.KNOWN_BUGS``) are set
apart and counted; the regression tests below are documents the search found (bugs fixed since).
"""

from __future__ import annotations

import binascii
import functools
import importlib
import json
import pkgutil
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase, given, settings

import after
from after.core.invalid import InvalidTask
from after.core.task import (
    MAX_CLIENT_CHARS,
    MAX_TASK_CHARS,
    META,
    NOT_CLIENT_SIZE,
    Document,
    is_task,
    json_chars,
    validate,
)
from after.store.couch.client import doc_path
from after.store.couch.design import design_document
from tests.hostile import (
    EXECUTABLES,
    Expected,
    Hostile,
    Written,
    batches,
    dead_on_this_host,
    expect,
    known_bug,
    materialize,
    near_a_size_limit,
)
from tests.integration.deployment import Deployment, WorkerProcess

pytestmark = pytest.mark.couch

DOCUMENTS = 300
LATENESS = 2.0  # seconds: a fresh task after the mix starts this close to its date (machines are noisy)
SCALE = 0.2  # dates and leases in the future are this much nearer than in the unit test (25 s -> 5 s)
WINDOW = 30.0  # seconds after writing within which every due task must have ended
HORIZON = 300.0  # the worker's default horizon
# Records each start as the hex of the task id (ids may hold spaces, newlines, any unicode): one write.
RECORD = """#!/bin/sh
line=$(printf '%s' "$AFTER_TASK_ID" | od -An -v -tx1 | tr -d ' \\n')
printf '%s\\n' "$line" >> {log}
"""


@functools.cache
def sample(count: int) -> list[Hostile]:
    """``count`` different documents from the generator, the same every run (hypothesis, fixed seeds)."""
    found: list[Hostile] = []
    seen: set[str] = set()

    def collect(batch: list[Hostile]) -> None:
        for hostile in batch:
            if repr(hostile) not in seen:
                seen.add(repr(hostile))
                found.append(hostile)

    for module in pkgutil.walk_packages(after.__path__, "after."):  # hypothesis draws constants from
        if not module.name.endswith(".__main__"):                    # the code loaded: all of After's
            importlib.import_module(module.name)                     # (a __main__ would run the CLI)
    for seed in range(1, 10):
        hypothesis.seed(seed)(settings(max_examples=count // 5, database=None, phases=[Phase.generate],
                                       deadline=None, suppress_health_check=list(HealthCheck))(
            given(batches(min_size=5, max_size=15))(collect)))()
        if len(found) >= count:
            return found[:count]
    raise AssertionError(f"the generator made only {len(found)} different documents")


@dataclass
class Outcome:
    """How the server answered one written document."""

    item: Written
    rev: str | None
    status: int  # HTTP status of the write (201 in _bulk_docs when it was taken)
    error: str | None = None
    reason: str | None = None


class Mix:
    def __init__(self, deployment: Deployment, server: str) -> None:
        self.deployment = deployment
        self.server = server
        self.store = deployment.store
        deployment.install("record", RECORD.format(log=deployment.ran_log))

    def write(self, items: list[Written]) -> list[Outcome]:
        """As a client would: ``_bulk_docs`` of raw JSON, one by one if the server refuses the batch."""
        outcomes: list[Outcome] = []
        for start in range(0, len(items), 50):
            chunk = items[start:start + 50]
            body = '{"docs": [' + ", ".join(item.text for item in chunk) + "]}"
            response = self.store.client.post(f"{self.store.db_path}/_bulk_docs", content=body.encode(),
                                              headers={"Content-Type": "application/json"})
            if response.status_code in (201, 417):  # 417: CouchDB when validation refused some
                rows = {row.get("id"): row for row in response.json()}  # pouchdb-server: refusals first
                for item in chunk:
                    row = rows[item.id]
                    outcomes.append(Outcome(item, row.get("rev"), 201 if "rev" in row else 0,
                                            row.get("error"), row.get("reason")))
                continue
            for item in chunk:
                single = self.store.client.put(f"{self.store.db_path}/{doc_path(item.id)}",
                                               content=item.text.encode(),
                                               headers={"Content-Type": "application/json"})
                answer = json.loads(single.text) if single.headers.get("content-type", "").startswith(
                    "application/json") else {"error": "not json", "reason": single.text[:200]}
                outcomes.append(Outcome(item, answer.get("rev"), single.status_code, answer.get("error"),
                                        answer.get("reason")))
        return outcomes

    def stored(self, outcome: Outcome) -> Document:
        """The document as the server stored it (the revision written), as the worker reads it."""
        if outcome.item.deep:  # Python cannot parse it; the store hands out a stand-in for it
            return {**outcome.item.doc, "_rev": outcome.rev}
        response = self.store.client.get(f"{self.store.db_path}/{doc_path(outcome.item.id)}",
                                         params={"rev": outcome.rev})
        if response.status_code == 404:  # pouchdb-server compacts at once: the worker wrote already
            return {**outcome.item.doc, "_rev": outcome.rev}
        assert response.status_code == 200, (outcome.item.id, response.text)
        doc: Document = response.json()
        return doc

    def ran(self) -> Counter[str]:
        lines = self.deployment.ran_log.read_text().split()
        return Counter(binascii.unhexlify(line).decode("utf-8", "surrogateescape") for line in lines)

    def current(self, ids: list[str]) -> dict[str, Document]:
        found: dict[str, Document] = {}
        for start in range(0, len(ids), 100):
            chunk = ids[start:start + 100]
            for task_id, doc in zip(chunk, self.store.get_many(chunk), strict=True):
                assert doc is not None, task_id
                found[task_id] = doc
        return found


FINAL = {"done", "err", "canceled"}


def verdict(expected: Expected, final: Document, rev: str | None, runs: int) -> str | None:
    wrong = verdict_of(expected, final, rev, runs)
    if wrong and expected.alternative and verdict_of(expected.alternative, final, rev, runs) is None:
        return None
    return wrong


def verdict_of(expected: Expected, final: Document, rev: str | None, runs: int) -> str | None:
    status = final.get("status")
    result = final.get("result")
    reason = result.get("reason") if isinstance(result, dict) else None
    if expected.outcome == "untouched":
        return None if final.get("_rev") == rev and runs == 0 else f"changed (status {status!r}), ran {runs}"
    if expected.outcome == "done":
        outcome = result.get("outcome") if isinstance(result, dict) else None
        runs_ok = runs == 1 if expected.job in ("record", "sleepy") else outcome == "done"
        return None if status == "done" and runs_ok else f"status {status!r}, ran {runs}, reason {reason!r}"
    if expected.outcome == "canceled":
        return None if status == "canceled" and runs == 0 else f"status {status!r}, ran {runs}"
    if expected.outcome == "later":
        return None if status not in ("done", "err") and runs == 0 else f"status {status!r}, ran {runs}"
    if status == "err" and isinstance(reason, str) and reason and (runs == 0 or expected.ran_ok):
        return None
    return f"status {status!r}, ran {runs}, reason {reason!r}"


def shown(item: Written) -> str:
    return item.text if len(item.text) < 500 else item.text[:250] + f"... ({len(item.text)} characters)"


def run_mix(deployment: Deployment, server: str, validation: bool) -> dict[str, Any]:
    """Write the mix (half before the worker starts), run, and return the problems and the counts."""
    if not validation:
        deployment.store.install_design(design_document(validate=False))
    mix = Mix(deployment, server)
    items = materialize(sample(DOCUMENTS), time.time(), prefix="v" if validation else "n", scale=SCALE)
    half = len(items) // 2
    started = time.time()
    outcomes = mix.write(items[:half])
    stored = [mix.stored(outcome) if outcome.rev else None for outcome in outcomes]
    worker = deployment.start_worker()
    deployment.wait_until(lambda: "ready" in worker.output(), 30.0, "the worker to be ready")
    ready = time.time()
    outcomes += mix.write(items[half:])
    stored += [mix.stored(outcome) if outcome.rev else None for outcome in outcomes[half:]]
    problems: list[str] = []
    counts: Counter[str] = Counter()
    expected: dict[str, tuple[Expected, Outcome]] = {}
    known: set[str] = set()
    for index, outcome in enumerate(outcomes):
        item = outcome.item
        bug = known_bug(stored[index] or item.doc, server, validation)
        if bug:
            counts[f"known bug {bug}"] += 1
            known.add(item.id)
            continue
        if outcome.rev is None:
            counts["refused"] += 1
            problem = refusal_problem(outcome, server, validation)
            if problem:
                problems.append(f"{item.id}: {problem}\n  {shown(item)}")
            continue
        doc = stored[index]
        assert doc is not None
        unread_after = started + HORIZON if index < half else None
        if validation and is_task(doc):
            try:
                validate(doc)
            except InvalidTask as error:
                if not outcome.item.deep:
                    problems.append(f"{item.id}: accepted at write, but After's table says: {error.reason}"
                                    f"\n  {shown(item)}")
        wanted = expect(doc, ready, time.time() + WINDOW, registry=registry(deployment),
                        is_dead=dead_on_this_host, executables=EXECUTABLES, unread_after=unread_after)
        expected[item.id] = (wanted, outcome)
        counts[wanted.outcome] += 1
    settle(deployment, mix, expected)
    final = mix.current(list(expected))
    runs = mix.ran()
    for task_id, (wanted, outcome) in expected.items():
        wrong = verdict(wanted, final[task_id], outcome.rev, runs.get(task_id, 0))
        if wrong:
            problems.append(f"{task_id}: expected {wanted.outcome} ({wanted.why}), {wrong}"
                            f"\n  {shown(outcome.item)}"
                            + "".join(f"\n  log: {line[:300]}" for line in logged(worker, task_id)))
    deployment.add([deployment.task("fresh", 2.0)])
    deployment.wait_status(["fresh"], "done", timeout=30.0)
    lateness = deployment.doc("fresh")["result"]["lateness_ms"]
    if not 0 <= lateness < LATENESS * 1000:
        problems.append(f"the fresh task after the mix started {lateness} ms after its date")
    if not worker.alive():
        problems.append("the worker process died")
    problems.extend(errors_logged(worker.output(), known))
    return {"problems": problems, "counts": counts}


def errors_logged(output: str, known: set[str]) -> list[str]:
    """ERROR lines (and tracebacks) the worker logged, but for tasks that show a known bug."""
    found: list[str] = []
    ignoring = False
    for line in output.splitlines():
        if line[:2].isdigit():  # a new record: "2026-11-29 20:56:10 LEVEL ..."
            ignoring = any(f"task {task_id}" in line for task_id in known)
            if " ERROR " in line and not ignoring:
                found.append(f"the worker logged: {line[:500]}")
        elif line.startswith("Traceback") and not ignoring:
            found.append("the worker logged a traceback")
    return found[:20]


def logged(worker: WorkerProcess, task_id: str) -> list[str]:
    """The worker's log lines about one task (the last few)."""
    return [line for line in worker.output().splitlines() if f"task {task_id}" in line][-4:]


def registry(deployment: Deployment) -> set[str]:
    return {path.name for path in deployment.jobs.iterdir()} | {"noop", "webhook", "compact_couchdb"}


def refusal_problem(outcome: Outcome, server: str, validation: bool) -> str | None:
    """What is wrong with a refusal: none without a reason, none of a valid task, none without validation
    but for what the server cannot store."""
    doc = outcome.item.doc
    if outcome.error in ("forbidden", "unauthorized"):
        if not validation:
            return f"refused ({outcome.error}) although nothing validates: {outcome.reason}"
        if not outcome.reason:
            return "refused without a reason"
        try:
            validate(doc)
        except InvalidTask:
            return None  # the reasons agree in substance; test_validation compares them word for word
        if "characters" in str(outcome.reason) and near_a_size_limit(doc):
            return None  # CouchDB counts its own JSON (JavaScript, Erlang): numbers written apart
        return f"refused ({outcome.reason}), but After's table says it is a valid task"
    if outcome.error == "bad_request" and server == "couchdb" and "UTF-8" in str(outcome.reason):
        return None  # lone surrogates: Apache CouchDB takes no invalid UTF-8, whatever validates
    return f"refused with HTTP {outcome.status} {outcome.error}: {outcome.reason}"


def settle(deployment: Deployment, mix: Mix, expected: dict[str, tuple[Expected, Outcome]]) -> None:
    """Wait until every task that must end has ended (and nothing else moves), or WINDOW + 30 s."""
    ending = [task_id for task_id, (wanted, _) in expected.items() if wanted.outcome in FINAL]
    deadline = time.monotonic() + WINDOW + 30.0
    while time.monotonic() < deadline:
        current = mix.current(ending)
        if all(doc.get("status") in FINAL for doc in current.values()):
            break
        time.sleep(0.5)
    time.sleep(1.0)  # late echoes (a second write, a job a process leaked) have their chance to show


@pytest.mark.parametrize("validation", [True, False], ids=["validation", "no-validation"])
def test_a_hostile_mix_ends_as_the_table_says_and_the_worker_stays_on_time(deployment: Deployment,
                                                                          validation: bool) -> None:
    server = deployment.server.kind.value
    started = time.monotonic()
    found = run_mix(deployment, server, validation)
    print(f"{server}, validation {validation}: {dict(found['counts'])} in {time.monotonic() - started:.1f} s")
    assert not found["problems"], "\n".join(found["problems"])


# ---- regression tests: documents the mix found, shrunk ----------------------------------------------------

def put_text(deployment: Deployment, doc_id: str, text: str) -> tuple[int, dict[str, Any]]:
    store = deployment.store
    response = store.client.put(f"{store.db_path}/{doc_path(doc_id)}", content=text.encode(),
                                headers={"Content-Type": "application/json"})
    return response.status_code, response.json()


def at_size(doc: Document, size: int, where: str, leave_out: tuple[str, ...]) -> Document:
    """``doc`` with ``doc[where]`` (ASCII) grown until After counts ``size`` characters (without ``_rev``)."""
    doc = {**doc, where: ""} if where != "history" else {**doc, "history": [""]}
    missing = size - json_chars(doc, leave_out)
    if where == "history":
        doc["history"] = ["x" * missing]
    else:
        doc[where] = "x" * missing
    assert json_chars(doc, leave_out) == size
    return doc


@pytest.mark.parametrize(("where", "limit", "leave_out"),
                         [("note", MAX_CLIENT_CHARS, NOT_CLIENT_SIZE), ("history", MAX_TASK_CHARS, META)],
                         ids=["48k", "64k"])
def test_regression_a_task_accepted_at_the_size_limit_runs(deployment: Deployment, where: str, limit: int,
                                                          leave_out: tuple[str, ...]) -> None:
    deployment.start_worker()
    doc = at_size(deployment.task("edge", -1.0, job="noop"), limit, where, leave_out)
    deployment.add([doc])  # accepted: exactly at the limit
    deployment.add([deployment.task("after-it", 0.0, job="noop")])
    deployment.wait_status(["after-it"], "done")
    deployment.wait_until(lambda: deployment.doc("edge")["status"] not in ("waiting", "scheduled", "running"),
                          5.0, "the task at the limit to end")
    assert deployment.doc("edge")["status"] == "done", deployment.doc("edge").get("result")


def test_regression_a_due_1_ms_from_the_date_is_judged_alike_on_both_sides(deployment: Deployment) -> None:
    doc = {"_id": "one-ms", "worker": "manobi", "date": "2011-10-12T08:30:00Z", "status": "scheduled",
           "due": "2011-10-12T08:30:00.001Z", "job": {"name": "noop"}}
    try:
        validate(doc)
        python = "valid"
    except InvalidTask as error:
        python = error.reason
    status, answer = put_text(deployment, "one-ms", json.dumps(doc))
    assert (status == 201) == (python == "valid"), (status, answer, python)


@pytest.mark.parametrize("date", ["\x1c2011-10-12T08:30:00Z\x1c", "\x852011-10-12T08:30:00Z",
                                  "\ufeff2011-10-12", "\u20032011-10-12", " 2011-10-12T08:30:00Z\t\n"])
def test_regression_white_space_around_a_date_is_judged_alike_on_both_sides(deployment: Deployment,
                                                                              date: str) -> None:
    """Found by the mix: str.strip() and JavaScript's trim() differ on \\x1c-\\x1f, \\x85 and \\ufeff."""
    doc = {"_id": "spaced", "worker": "manobi", "date": date, "status": "waiting", "job": {"name": "noop"}}
    try:
        validate(doc)
        python = "valid"
    except InvalidTask as error:
        python = error.reason
    status, answer = put_text(deployment, "spaced", json.dumps(doc))
    assert (status == 201) == (python == "valid"), (status, answer, python)
    if status != 201:
        assert answer["reason"] == python


def test_regression_a_lone_surrogate_reaches_an_executable_on_stdin_and_is_refused_in_argv(
        deployment: Deployment) -> None:
    """pouchdb-server stores lone surrogates (Apache CouchDB refuses them with 400): UTF-8 cannot carry
    them, so the task on stdin falls back to ASCII JSON, and an argument holding one ends the task err."""
    base = '{"worker": "manobi", "date": "2011-10-12", "status": "waiting", "note": "\\ud800", "job": '
    status, answer = put_text(deployment, "lone", base + '{"name": "record", "arguments": []}}')
    if status == 400:
        pytest.skip(f"this server refuses lone surrogates at write: {answer}")  # Apache CouchDB
    put_text(deployment, "lone-arg", base + '{"name": "record", "arguments": ["\\udc00"]}}')
    worker = deployment.start_worker()
    deployment.wait_until(lambda: all(deployment.doc(task_id)["status"] in ("done", "err")
                                      for task_id in ("lone", "lone-arg")), 20.0, "the tasks to end")
    assert deployment.doc("lone")["status"] == "done", deployment.doc("lone")["result"]["reason"]
    refused = deployment.doc("lone-arg")
    assert refused["status"] == "err" and "argument 0 is not valid text" in refused["result"]["reason"]
    assert "Traceback" not in worker.output()


def test_regression_a_task_id_with_nul_ends_err_with_a_reason_and_no_traceback(
        deployment: Deployment) -> None:
    worker = deployment.start_worker()
    deployment.add([deployment.task("nul\x00id", 0.0)])
    deployment.wait_until(lambda: deployment.doc("nul\x00id")["status"] in ("done", "err"), 20.0,
                          "the task to end")
    doc = deployment.doc("nul\x00id")
    assert doc["status"] == "err" and "NUL" in doc["result"]["reason"], doc["result"]["reason"]
    assert "Traceback" not in worker.output()
