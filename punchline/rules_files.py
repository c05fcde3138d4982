"""``punchline rules import/export``: keep a merchant's rules in version control."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

import rules
from punchline.config import Settings
from punchline.db.engine import create_engine
from punchline.db.repositories import rule_sets
from schemas.rules import RuleSet


class RuleFileError(Exception):
    pass


def load_rule_file(path: Path) -> RuleSet:
    try:
        data: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RuleFileError(f"{path}: {exc}") from exc
    try:
        rule_set = RuleSet.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(
            f"  {'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise RuleFileError(f"{path} is not a valid rule set:\n{problems}") from exc
    rules.compile_rule_set(rule_set, 1)
    return rule_set


async def import_rules(settings: Settings, *, org_id: uuid.UUID, path: Path) -> int:
    rule_set = load_rule_file(path)
    engine = create_engine(settings, pool_size=1)
    try:
        async with engine.begin() as conn:
            stored = await rule_sets.insert_version(
                conn,
                org_id=org_id,
                body=rule_set.model_dump_json(exclude_none=True),
                created_by=f"cli:{path.name}",
            )
        return stored.version
    finally:
        await engine.dispose()


async def export_rules(settings: Settings, *, org_id: uuid.UUID, version: int | None) -> str:
    engine = create_engine(settings, pool_size=1)
    try:
        async with engine.connect() as conn:
            if version is None:
                stored = await rule_sets.active(conn, org_id)
                body = stored.body if stored else RuleSet.default().model_dump(mode="json")
            else:
                found = await rule_sets.load_versions(conn, [(org_id, version)])
                if (org_id, version) not in found:
                    raise RuleFileError(f"org {org_id} has no rule set version {version}")
                body = found[(org_id, version)]
    finally:
        await engine.dispose()
    clean = RuleSet.model_validate(body).model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(clean, sort_keys=False, allow_unicode=True)
