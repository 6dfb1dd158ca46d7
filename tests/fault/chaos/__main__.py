"""``python -m tests.fault.chaos``: see ``tests.fault.chaos.runner``."""

import sys

from tests.fault.chaos.runner import main

sys.exit(main())
