"""After: a job scheduler driven over CouchDB's HTTP API."""

__version__ = "0.1.0"
