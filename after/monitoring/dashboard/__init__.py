"""The dashboard: a web page served by CouchDB itself, installed by ``after init``.

``static/`` holds the page (HTML, CSS and plain JavaScript modules, no build step); ``design`` turns it
into design documents and installs them; ``queries`` reads what the page reads, for ``after metrics``.
"""

from after.monitoring.dashboard.design import PAGE_DESIGN_ID, install_dashboard, page_database, page_path

__all__ = ["PAGE_DESIGN_ID", "install_dashboard", "page_database", "page_path"]
