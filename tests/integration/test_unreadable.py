"""Documents nested deeper than Python's JSON parser goes (CouchDB takes them when nothing validates).

Issue 7: one such document in the feed stopped a worker for good, and every reconnect read it again.
The stores hand out a stand-in for it, the worker answers it ``err`` with its text kept, and every
other task is read, followed and run as usual.
"""

from __future__ import annotations

from after.core.task import UNREADABLE, Document
from after.store.couch.client import CouchStore, doc_path
from after.store.couch.design import design_document
from tests.integration.deployment import Deployment

DEEP = 1500


def put_deep(store: CouchStore, task_id: str) -> str:
    """Write a task whose arguments nest ``DEEP`` lists, as raw JSON (Python could not encode it)."""
    body = ('{"worker": "manobi", "date": "2011-10-12", "status": "waiting", '
            '"job": {"name": "record", "arguments": ' + "[" * DEEP + "]" * DEEP + "}}")
    response = store.client.put(f"{store.db_path}/{doc_path(task_id)}", content=body,
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    return str(response.json()["rev"])


def without_validation(store: CouchStore) -> None:
    store.install_design(design_document(validate=False))


def test_the_store_hands_out_a_stand_in_wherever_the_document_is_read(couch_store: CouchStore) -> None:
    without_validation(couch_store)
    seq = couch_store.update_seq()
    couch_store.put({"_id": "before", "worker": "manobi", "date": "2011-10-12", "status": "waiting",
                     "job": {"name": "record"}})
    rev = put_deep(couch_store, "deep")
    couch_store.put({"_id": "after", "worker": "manobi", "date": "2011-10-12", "status": "waiting",
                     "job": {"name": "record"}})
    stand_in = couch_store.get("deep")
    assert stand_in is not None and stand_in["_rev"] == rev and stand_in["worker"] == "manobi"
    assert stand_in["status"] == "waiting" and '"arguments":[[[' in stand_in[UNREADABLE]["text"]
    live = {str(doc["_id"]): doc for doc in couch_store.live_tasks("manobi")}
    assert sorted(live) == ["after", "before", "deep"] and UNREADABLE in live["deep"]
    assert [doc and doc["_id"] for doc in couch_store.get_many(["before", "deep", "missing"])] == \
        ["before", "deep", None]
    seen: list[Document] = []
    for change in couch_store.changes("manobi", seq, heartbeat=0.2):
        if change is not None:
            assert change.doc is not None
            seen.append(change.doc)
        if len(seen) == 3:
            break
    assert sorted(str(doc["_id"]) for doc in seen) == ["after", "before", "deep"]
    assert UNREADABLE in next(doc for doc in seen if doc["_id"] == "deep")


def test_the_worker_answers_it_err_keeps_its_text_and_runs_the_rest(deployment: Deployment) -> None:
    without_validation(deployment.store)
    put_deep(deployment.store, "deep-before-start")
    worker = deployment.start_worker()
    deployment.add([deployment.task("good-1", 1.0)])
    put_deep(deployment.store, "deep-while-running")
    deployment.add([deployment.task("good-2", 2.0)])
    deployment.wait_status(["good-1", "good-2"], "done")
    deployment.wait_status(["deep-before-start", "deep-while-running"], "err")
    for task_id in ("deep-before-start", "deep-while-running"):
        doc = deployment.doc(task_id)
        assert "nested deeper than its JSON parser goes" in doc["result"]["reason"]
        assert '"arguments":[[[' in doc[UNREADABLE]["text"]
    assert deployment.ran() == {"good-1": 1, "good-2": 1}
    worker.terminate()
    restarted = deployment.start_worker()  # reconciles without tripping over them again
    deployment.add([deployment.task("good-3", 1.0)])
    deployment.wait_status(["good-3"], "done")
    assert restarted.alive() and "Traceback" not in restarted.output()


def test_a_raw_client_sees_the_deep_document_refused_when_validation_is_on(couch_store: CouchStore) -> None:
    body = ('{"worker": "manobi", "date": "2011-10-12", "status": "waiting", '
            '"job": {"name": "record", "arguments": ' + "[" * DEEP + "]" * DEEP + "}}")
    response = couch_store.client.put(f"{couch_store.db_path}/deep", content=body,
                                      headers={"Content-Type": "application/json"})
    assert response.status_code in (401, 403)  # pouchdb-server: 401 where CouchDB says 403
    assert "nested deeper than 32 levels" in response.text
