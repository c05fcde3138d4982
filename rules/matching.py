"""Matching lines to rules by sku, product name or category, case-insensitively.

Values are folded (``fold``: stripped, casefolded) when a rule set is compiled
and when a product is first profiled; a missing field folds to "" and matches
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.rules import Match


def fold(value: str | None) -> str:
    return value.strip().casefold() if value else ""


@dataclass(frozen=True, slots=True)
class Matcher:
    skus: frozenset[str]
    names: frozenset[str]
    categories: frozenset[str]

    def matches(self, sku: str, name: str, category: str) -> bool:
        return sku in self.skus or name in self.names or category in self.categories


NOTHING = Matcher(skus=frozenset(), names=frozenset(), categories=frozenset())


def compile_match(match: Match | None) -> Matcher:
    """The matcher of a ``Match``; None (no list at all) matches nothing."""
    if match is None:
        return NOTHING
    return Matcher(
        skus=frozenset(fold(v) for v in match.skus),
        names=frozenset(fold(v) for v in match.names),
        categories=frozenset(fold(v) for v in match.categories),
    )


def _by_token(tokens: list[frozenset[str]]) -> dict[str, tuple[int, ...]]:
    index: dict[str, list[int]] = {}
    for position, values in enumerate(tokens):
        for token in values:
            index.setdefault(token, []).append(position)
    return {token: tuple(positions) for token, positions in index.items()}


class MatchIndex:
    """Which of many matchers a product hits, in three dict look-ups instead of a scan."""

    __slots__ = ("_by_category", "_by_name", "_by_sku")

    def __init__(self, matchers: list[Matcher]) -> None:
        self._by_sku = _by_token([m.skus for m in matchers])
        self._by_name = _by_token([m.names for m in matchers])
        self._by_category = _by_token([m.categories for m in matchers])

    def hits(self, sku: str, name: str, category: str) -> tuple[int, ...]:
        """Positions of the matchers listing this product, ascending, each once."""
        found = self._by_sku.get(sku, ()) + self._by_name.get(name, ())
        found += self._by_category.get(category, ())
        return tuple(sorted(set(found))) if len(found) > 1 else found
