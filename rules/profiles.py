"""Product profiles: what a compiled rule set says about one product.

A profile is a product's eligibility and the rules whose match lists it: the
bonuses, the happy-hour scopes and the item stamp cards. It depends only on
the product's (sku, name, category), so each rule set computes it once per
product and memoizes it: a chain sells the same few hundred products all day.
The memo never changes a result, only how fast it comes; it is bounded, and
dict operations keep it safe to share between threads.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.matching import NOTHING, Matcher, MatchIndex, fold

MEMO_LIMIT = 8192  # distinct products kept per rule set before the memo starts over


@dataclass(frozen=True, slots=True)
class Profile:
    eligible: bool
    bonuses: tuple[int, ...]  # positions of the matching bonuses, ascending
    in_scope: tuple[bool, ...]  # per happy hour, in declaration order
    cards: tuple[int, ...]  # positions of the matching item stamp cards, ascending


class Profiles:
    __slots__ = ("_bonuses", "_cards", "_excluded", "_memo", "_scopes", "_unscoped", "order")

    def __init__(
        self,
        excluded: Matcher,
        bonuses: list[Matcher],
        scopes: list[Matcher | None],
        cards: list[Matcher | None],
    ) -> None:
        self._excluded = excluded
        self._bonuses = MatchIndex(bonuses)
        self._scopes = MatchIndex([scope or NOTHING for scope in scopes])
        self._unscoped = tuple(scope is None for scope in scopes)  # every eligible line
        self._cards = MatchIndex([card or NOTHING for card in cards])  # None: not an item card
        self._memo: dict[tuple[str | None, str, str | None], Profile] = {}
        # The pseudo line ``_order``: in every unscoped happy hour, nothing else.
        self.order = Profile(True, (), self._unscoped, ())

    def of(self, sku: str | None, name: str, category: str | None) -> Profile:
        key = (sku, name, category)
        profile = self._memo.get(key)
        if profile is None:
            profile = self._profile(fold(sku), fold(name), fold(category))
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            self._memo[key] = profile
        return profile

    def _profile(self, sku: str, name: str, category: str) -> Profile:
        if self._excluded.matches(sku, name, category):
            return Profile(False, (), tuple(False for _ in self._unscoped), ())
        scoped = self._scopes.hits(sku, name, category)
        return Profile(
            eligible=True,
            bonuses=self._bonuses.hits(sku, name, category),
            in_scope=tuple(unscoped or k in scoped for k, unscoped in enumerate(self._unscoped)),
            cards=self._cards.hits(sku, name, category),
        )
