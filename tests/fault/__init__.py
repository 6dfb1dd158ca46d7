"""Fault runs that take minutes and print figures, outside ``make check``: ``python -m tests.fault.NAME``."""
