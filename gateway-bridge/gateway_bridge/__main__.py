"""``python -m gateway_bridge``: the bridge's command line (see ``cli``)."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
