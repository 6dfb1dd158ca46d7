"""The worker: its loop (``loop``: fed with events and ``now``) and the parts it is made of.

- ``lifecycle``: a task's phases and the one table of moves between them; ``state``: the tasks in hand
- ``documents``: what a revision means; ``claiming``, ``starting``, ``leases``, ``horizon``,
  ``stopping``, ``answers``: claims, job starts and results, leases, what is in memory, the stop
  sequence, the writer's answers; ``budget``: how many claims a process may hold
- ``sharing`` and ``presence``: several processes of one worker name; ``results``: run records
- ``events``: what the I/O threads report; ``io``: those threads; ``build``: the one builder
"""
