"""The org's active rule set, for the few facts the synchronous paths need from it:
the default stamp card (stamp redeem, ``stamp_count``) and the tier order
(``tier_locked``)."""

from __future__ import annotations

import logging
import uuid

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.repositories import rule_sets
from schemas.rules import RuleSet

log = logging.getLogger(__name__)
_DEFAULT = RuleSet.default()
# A stored version never changes, so a parsed one is reused; only the active version
# number is read per request (a redeem used to parse the whole rule set every time).
_PARSED: dict[tuple[uuid.UUID, int], RuleSet] = {}
_MAX_PARSED = 1024


async def active_rule_set(conn: AsyncConnection, org_id: uuid.UUID) -> RuleSet:
    version = (await rule_sets.active_versions(conn, [org_id])).get(org_id)
    if version is None:
        return _DEFAULT
    parsed = _PARSED.get((org_id, version))
    if parsed is not None:
        return parsed
    bodies = await rule_sets.load_versions(conn, [(org_id, version)])
    try:
        parsed = RuleSet.model_validate(bodies[(org_id, version)])
    except (KeyError, ValidationError):
        log.exception("stored rule set v%s of org %s does not validate", version, org_id)
        return _DEFAULT
    if len(_PARSED) >= _MAX_PARSED:
        _PARSED.clear()
    _PARSED[(org_id, version)] = parsed
    return parsed


def default_card_id(rule_set: RuleSet) -> str:
    """The card a Loyalite ``card_type=stamp`` call means."""
    if rule_set.default_stamp_card is not None:
        return rule_set.default_stamp_card
    if rule_set.stamp_cards:
        return rule_set.stamp_cards[0].id
    return "default"


def tier_reached(rule_set: RuleSet, *, customer_tier: str | None, required: str | None) -> bool:
    """Whether a customer's tier is the required one or above it (tiers ascend by threshold)."""
    if required is None:
        return True
    if customer_tier is None:
        return False
    order = [t.name for t in rule_set.tiers]
    if required not in order or customer_tier not in order:
        return customer_tier == required
    return order.index(customer_tier) >= order.index(required)
