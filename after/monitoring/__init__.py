"""Monitoring on the one port: Prometheus metrics (``metrics``) and the dashboard CouchDB serves
(``dashboard``)."""
