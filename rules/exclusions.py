"""Exclusions: skus, product names or categories that never earn.

An excluded line earns no base points, no bonus, no happy-hour or tier points
and no stamps, and its amount does not count toward the eligible amount (nor
toward a stamp card's ``min_spend_cents``). It still counts toward the order
total that ``min_amount_cents`` is judged on: that is the sale's amount.
Gift cards are the usual case: selling one is not a purchase to reward.
Exclusions win over every match: an excluded product's profile lists no rule.
"""

from __future__ import annotations

from rules.matching import Matcher, compile_match
from schemas.rules import Match


def compile_exclusions(match: Match | None) -> Matcher:
    """The matcher of excluded lines (matching nothing when there are no exclusions)."""
    return compile_match(match)
