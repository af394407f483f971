"""Bytes on disk of a directory, counted as `du` counts them (allocated blocks, each inode once)."""

from __future__ import annotations

import os
from pathlib import Path


def bytes_on_disk(path: Path) -> int | None:
    """Allocated bytes under `path` (what `du -s -B1` prints); None if it is not here.

    A file can vanish while we walk (compaction, rotation): it is skipped.
    """
    if not path.exists():
        return None
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files, None]:
            entry = Path(root) if name is None else Path(root) / name
            try:
                stat = entry.lstat()
            except FileNotFoundError:
                continue
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * 512
    return total
