"""The Debian package version, derived from after.__version__ (no network, no git needed).

    python3 packaging/debversion.py                     print the version (DEB_VERSION overrides it)
    python3 packaging/debversion.py changelog VERSION   print debian/changelog with VERSION on top

`make deb DEB_VERSION=0.1.0+1` builds a higher version from the same tree (the upgrade test does that).
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAINTAINER = "After developers <after@localhost.localdomain>"


def upstream_version() -> str:
    text = (HERE.parent / "after" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if match is None:
        raise SystemExit("after/__init__.py has no __version__")
    return match.group(1)


def changelog(version: str) -> str:
    current = (HERE / "debian" / "changelog").read_text()
    top = re.match(r"after \(([^)]+)\)", current)
    if top is not None and top.group(1) == version:
        return current
    stamp = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    entry = (
        f"after ({version}) unstable; urgency=medium\n\n"
        f"  * Build of after {upstream_version()} as {version}.\n\n"
        f" -- {MAINTAINER}  {stamp}\n\n"
    )
    return entry + current


def main(argv: list[str]) -> None:
    if argv[:1] == ["changelog"] and len(argv) == 2:
        sys.stdout.write(changelog(argv[1]))
    elif not argv:
        print(os.environ.get("DEB_VERSION") or upstream_version())
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
