"""The pure core: the task document and its validation, dates, the worker's writes as transitions,
conflict settling, clocks and timers. No I/O: everything here takes values (and ``now``) and returns
values, so the worker loop, the command line and the tests share it."""
