"""``/healthz``: the process is alive. ``/readyz``: Postgres and the broker answer."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from ingest_api.deps import EngineDep, ProducerDep
from ingest_api.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(engine: EngineDep, producer: ProducerDep) -> JSONResponse:
    checks = {"database": False, "broker": False}
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception:
        pass
    checks["broker"] = await producer.ping()
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
