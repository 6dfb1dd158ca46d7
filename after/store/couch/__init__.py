"""CouchDB over HTTP: the client (``client``), how it reads tasks on each kind of server (``queries``),
the Mango indexes (``indexes``), the design documents with their validation in JavaScript (``design``)
and Erlang (``design_erlang``), and the TCP transport (``transport``)."""
