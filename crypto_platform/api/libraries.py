"""The dashboard's browser libraries, served by the API from vendor/node_modules: no CDN.

npm installs them (`make install`: `npm ci --prefix crypto_platform/api/vendor`) exactly as
vendor/package-lock.json pins them; the wheel carries these files (pyproject package-data).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from crypto_platform.api.errors import BackendUnavailable

__all__ = ["LIBRARIES", "router"]

MODULES = Path(__file__).parent / "vendor" / "node_modules"
# Name under /vendor/ -> the file npm installed. The candlestick plugin needs no date
# adapter: the dashboard's x axes are linear, in ms.
LIBRARIES = {
    "chart.js": MODULES / "chart.js" / "dist" / "chart.umd.min.js",
    "chartjs-chart-financial.js": (
        MODULES / "chartjs-chart-financial" / "dist" / "chartjs-chart-financial.min.js"
    ),
}

router = APIRouter()


@router.get("/vendor/{name}", include_in_schema=False)
async def library(name: str) -> FileResponse:
    path = LIBRARIES.get(name)
    if path is None:
        raise HTTPException(404, f"no library {name}")
    if not path.exists():
        raise BackendUnavailable("dashboard", f"{name} missing: run `make install` (npm ci)")
    return FileResponse(path, media_type="text/javascript")
