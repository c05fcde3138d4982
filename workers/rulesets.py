"""Which compiled rule set applies to each org, cached per version.

Each batch asks Postgres for the active version of its orgs (one cheap
indexed query); only a new version is loaded, validated and compiled. So a
merchant's change applies from the next batch on, on every worker, with no
restart. Orgs without stored rules get the default rule set.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict

from sqlalchemy.ext.asyncio import AsyncConnection

import rules
from punchline.db.repositories import rule_sets
from schemas.rules import RuleSet

DEFAULT_VERSION = 0
_DEFAULT = rules.compile_rule_set(RuleSet.default(), DEFAULT_VERSION)


def default_compiled() -> rules.CompiledRuleSet:
    return _DEFAULT


class RuleSetCache:
    def __init__(self, max_entries: int = 10_000) -> None:
        self._max = max_entries
        self._compiled: OrderedDict[uuid.UUID, tuple[int, rules.CompiledRuleSet]] = OrderedDict()
        self._by_version: OrderedDict[tuple[uuid.UUID, int], rules.CompiledRuleSet] = OrderedDict()

    async def versions(
        self, conn: AsyncConnection, wanted: set[tuple[uuid.UUID, int]]
    ) -> dict[tuple[uuid.UUID, int], rules.CompiledRuleSet]:
        """Specific versions (a reversal uses the version that made the decision)."""
        found: dict[tuple[uuid.UUID, int], rules.CompiledRuleSet] = {}
        missing = []
        for org, version in wanted:
            if version == DEFAULT_VERSION:
                found[(org, version)] = _DEFAULT
            elif (org, version) in self._by_version:
                found[(org, version)] = self._by_version[(org, version)]
            else:
                missing.append((org, version))
        if missing:
            bodies = await rule_sets.load_versions(conn, missing)
            for (org, version), body in bodies.items():
                compiled = rules.compile_rule_set(RuleSet.model_validate(body), version)
                self._by_version[(org, version)] = found[(org, version)] = compiled
            while len(self._by_version) > self._max:
                self._by_version.popitem(last=False)
        return found

    async def __call__(
        self, conn: AsyncConnection, org_ids: set[uuid.UUID]
    ) -> dict[uuid.UUID, rules.CompiledRuleSet]:
        if not org_ids:
            return {}
        active = await rule_sets.active_versions(conn, sorted(org_ids, key=str))
        stale = [
            (org, version)
            for org, version in active.items()
            if org not in self._compiled or self._compiled[org][0] != version
        ]
        if stale:
            bodies = await rule_sets.load_versions(conn, stale)
            for (org, version), body in bodies.items():
                compiled = rules.compile_rule_set(RuleSet.model_validate(body), version)
                self._compiled[org] = (version, compiled)
        result: dict[uuid.UUID, rules.CompiledRuleSet] = {}
        for org in org_ids:
            if org in active and org in self._compiled:
                self._compiled.move_to_end(org)
                result[org] = self._compiled[org][1]
            else:
                result[org] = _DEFAULT
        while len(self._compiled) > self._max:
            self._compiled.popitem(last=False)
        return result
