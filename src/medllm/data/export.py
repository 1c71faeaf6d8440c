"""Writing canonical datasets and reports atomically."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable


def save_jsonl(rows: Iterable[dict], path: str | Path) -> Path:
    """Stream rows to ``path`` through a temp file (a crash never leaves half a file under the final name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
