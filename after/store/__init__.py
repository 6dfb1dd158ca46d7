"""Where tasks live: the store contract's data and errors (``types``), the in-memory store
(``memory``), what ``after init`` installs (``setup``), and the CouchDB client (``couch``)."""
