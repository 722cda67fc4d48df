"""The cloud vendors this package: importing it must not pull in any cloud dependency."""

from __future__ import annotations

import subprocess
import sys


def test_protocol_imports_no_cloud_modules() -> None:
    code = (
        "import sys, gateway_bridge.protocol\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in {'chalicelib', 'chalice', 'boto3', 'botocore',"
        " 'pynamodb', 'pymodbus', 'websockets'}]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
