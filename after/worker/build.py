"""The one builder of a worker: its loop and its I/O parts, wired the same for the daemon and the tests.

``after.app.run_worker`` starts the assembly's threads; tests step the loop and flush the writers
themselves (``Assembly.flush``) with a fake clock and an in-memory store, through the same wiring.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from after.config import WorkerConfig
from after.contracts import Clock, Notifier, Registry, Runner, Services, StartJournal, Store
from after.core.policies import Policies
from after.core.series import Defaults, task_policies
from after.core.transitions import Owner
from after.worker.events import Event
from after.worker.io.follower import Follower
from after.worker.io.presence import PresenceKeeper
from after.worker.io.runner import JobRunner
from after.worker.io.writer import RoutedWriter, StoreWriter, WriteLatency
from after.worker.loop import Worker
from after.worker.starts import NoStarts
from after.worker.state import Ports


@dataclass
class Assembly:
    worker: Worker
    inbox: queue.Queue[Event]
    writer: RoutedWriter
    writers: tuple[StoreWriter, ...]  # claims, urgent (renewals, results), answers to clients
    runner: Runner
    follower: Follower
    presence: PresenceKeeper
    give_up: threading.Event = field(default_factory=threading.Event)  # writers stop retrying
    follower_stop: threading.Event = field(default_factory=threading.Event)

    def threads(self) -> list[threading.Thread]:
        """The I/O threads the daemon runs beside the loop."""
        targets = [(self.writers[0].run, "after-writer"), (self.writers[1].run, "after-lease-writer"),
                   (self.writers[2].run, "after-answer-writer"), (self.follower.run, "after-follower"),
                   (self.presence.run, "after-presence")]
        return [threading.Thread(target=target, name=name, daemon=True) for target, name in targets]

    def flush(self) -> None:
        """Write everything queued, in this thread (tests step the loop and the writers in turn)."""
        for writer in self.writers:
            writer.flush()


def assemble(owner: Owner, settings: WorkerConfig, store: Store, registry: Registry, notifier: Notifier,
             clock: Clock, runner: Callable[[queue.Queue[Event]], Runner] | None = None,
             is_dead: Callable[[dict[str, Any]], bool] = lambda by: False,
             policies: Policies | None = None, starts: StartJournal | None = None) -> Assembly:
    """A worker for ``owner``: its loop, three writers, a job runner, the changes follower and the
    presence keeper, all reporting to one inbox. ``runner`` builds the job runner (default: threads);
    ``policies`` default to repeat, retry and missed runs with the defaults of ``settings``; ``starts``
    (default: none, nothing known) notes job starts and tells takeovers which dead claims started."""
    policies = policies or task_policies(Defaults(settings.missed, settings.missed_grace))
    inbox: queue.Queue[Event] = queue.Queue()
    give_up, follower_stop = threading.Event(), threading.Event()
    latency = WriteLatency()

    def wall() -> float:
        return clock.now().wall

    writers = tuple(StoreWriter(store, owner.worker, inbox, give_up, wall=wall, latency=latency)
                    for _ in range(3))
    writer = RoutedWriter(*writers)
    jobs = runner(inbox) if runner is not None else JobRunner(settings.concurrency, inbox, clock)
    ports = Ports(writer, jobs, registry, notifier, Services(store=store), is_dead=is_dead, wall=wall,
                  starts=starts or NoStarts())
    worker = Worker(owner, settings, ports, clock.now(), inbox, policies)
    follower = Follower(store, owner.worker, inbox, clock, settings.horizon, follower_stop)
    presence = PresenceKeeper(store, owner, inbox, clock, lambda: worker.report, follower_stop,
                              is_dead=is_dead)
    return Assembly(worker, inbox, writer, writers, jobs, follower, presence, give_up, follower_stop)
