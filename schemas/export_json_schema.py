"""Write the JSON Schemas of the Kafka contracts to ``docs/schemas/``.

    python -m schemas.export_json_schema          # (re)write the files
    python -m schemas.export_json_schema --check  # exit 1 if a committed file is stale

The files are generated from the pydantic models the workers validate with, so
what a chain's own producer checks against is what the workers accept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from schemas.events import INGEST_SCHEMA_VERSION, DeadLetter, IngestEvent

DOCS_SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _document(model: type[BaseModel], *, topic: str, version: int) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    return {
        "$schema": _DIALECT,
        "$id": f"urn:punchline:schema:{topic}",
        "x-topic": topic,
        "x-schema-version": version,
        **schema,
    }


def documents() -> dict[str, bytes]:
    """File name → exact bytes of every schema file (2-space indent, final newline)."""
    docs = {
        "ingest-event.v1.json": _document(
            IngestEvent, topic="punchline.ingest.v1", version=INGEST_SCHEMA_VERSION
        ),
        "dead-letter.v1.json": _document(DeadLetter, topic="punchline.dlq.v1", version=1),
    }
    return {name: orjson.dumps(d, option=orjson.OPT_INDENT_2) + b"\n" for name, d in docs.items()}


def stale(directory: Path = DOCS_SCHEMAS) -> list[str]:
    """Names of the files that are missing or differ from what the models generate."""
    out = []
    for name, content in documents().items():
        path = directory / name
        if not path.exists() or path.read_bytes() != content:
            out.append(name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is stale")
    parser.add_argument("--out", type=Path, default=DOCS_SCHEMAS)
    args = parser.parse_args(argv)
    if args.check:
        names = stale(args.out)
        for name in names:
            print(f"stale: {args.out / name} (run python -m schemas.export_json_schema)")
        return 1 if names else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, content in documents().items():
        (args.out / name).write_bytes(content)
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
