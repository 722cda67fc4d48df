"""Daily move of cold readings to the archive (S3 in AWS, a folder locally)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from chalice import Blueprint

from chalicelib.bootstrap import get_services
from chalicelib.config import get_settings

bp = Blueprint(__name__)
LOG = logging.getLogger("voltvend.jobs.archival")


@bp.schedule("rate(1 day)")
def archive_cold_readings(event: Any) -> dict[str, int]:
    from chalicelib.adapters.archive_store import FolderArchive, S3Archive
    from chalicelib.adapters.clock import SystemClock
    from chalicelib.ports import ArchiveStore
    from chalicelib.services.archival import ReadingArchiver

    settings, services = get_settings(), get_services()
    store: ArchiveStore = S3Archive(settings.archive_bucket) if settings.archive_bucket \
        else FolderArchive(Path(settings.archive_dir))
    moved = ReadingArchiver(services.readings, services.tenancy, store).run(SystemClock().now())
    LOG.info("archived %d readings", moved)
    return {"archived": moved}
