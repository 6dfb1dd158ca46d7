"""The fault suite (issue 8, item 6): every fault scenario, at full size, in one table of figures.

    python -m tests.fault.chaos                     # all of them, about 15 minutes on 2 cores (make chaos)
    python -m tests.fault.chaos --only link-cut --only skewed-clocks
    python -m tests.fault.chaos --list

Each scenario runs fresh worker processes of the name ``manobi`` on a database of its own, every job
one that records its start in real time (``run``), and counts the same figures (``figures``): tasks,
lost, unrecorded duplicates, recorded reruns, conflicts left, lateness p50/p99. The modules:

- ``processes``: worker processes, here or on a host, and a ``NOTIFY_SOCKET`` to read ``STATUS=`` from.
- ``figures``: the figures and how each is counted; ``run``: a run's database, job, processes, tasks.
- ``scenarios_node``: on one CouchDB node: ``kill-storm``, ``couchdb-restarts``, ``sharing-N-...``.
- ``scenarios_cluster``: on a 3-node cluster: ``cluster-spread``, ``cluster-burst``,
  ``cluster-node-kill``, ``node-failover``.
- ``scenarios_hosts``: hosts as network namespaces (``tests.hosts``): ``link-cut``, ``skewed-clocks``.
- ``table``: the table and ``tests/fault/CHAOS.md``; ``runner``: the scenarios at full size, in turn.

The integration tests (``tests/integration/test_multihost.py``, ``test_failover.py``,
``test_sharing_load.py``) run the same scenario functions at small sizes in ``make check``.
"""

from tests.fault.chaos.figures import Figures, describe
from tests.fault.chaos.run import server_on
from tests.fault.chaos.scenarios_cluster import node_failover
from tests.fault.chaos.scenarios_hosts import link_cut, skewed_clocks
from tests.fault.chaos.scenarios_node import sharing

__all__ = ["Figures", "describe", "link_cut", "node_failover", "server_on", "sharing", "skewed_clocks"]
