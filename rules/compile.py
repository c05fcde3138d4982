"""Compiling a validated ``RuleSet`` once into plain frozen values for the hot path.

``evaluate`` reads only the ``CompiledRuleSet``: no pydantic, no Decimal
(multipliers become integer hundredths), folded match tokens in frozensets,
and a memo of product profiles. Compile once per (org, version) and cache it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rules.base import Program, compile_program
from rules.bonuses import CompiledBonus, compile_bonus
from rules.caps import CompiledCaps, compile_caps
from rules.exclusions import compile_exclusions
from rules.happy_hour import CompiledHappyHour, compile_happy_hour
from rules.matching import compile_match
from rules.profiles import Profiles
from rules.stamps import CompiledCard, card_matcher, compile_card
from rules.tiers import Tiers, compile_tiers
from schemas.rules import RuleSet


@dataclass(frozen=True, slots=True)
class CompiledRuleSet:
    version: int
    program: Program
    min_amount_cents: int
    bonuses: tuple[CompiledBonus, ...]
    happy_hours: tuple[CompiledHappyHour, ...]
    tiers: Tiers
    caps: CompiledCaps
    cards: tuple[CompiledCard, ...]
    cards_by_id: Mapping[str, CompiledCard]
    default_card: str | None
    profiles: Profiles  # exclusions and every match, per product


def compile_rule_set(rule_set: RuleSet, version: int) -> CompiledRuleSet:
    cards = tuple(compile_card(card) for card in rule_set.stamp_cards)
    profiles = Profiles(
        excluded=compile_exclusions(rule_set.exclusions),
        bonuses=[compile_match(bonus.match) for bonus in rule_set.bonuses],
        scopes=[
            None if hh.scope is None else compile_match(hh.scope) for hh in rule_set.happy_hours
        ],
        cards=[card_matcher(card) for card in rule_set.stamp_cards],
    )
    return CompiledRuleSet(
        version=version,
        program=compile_program(rule_set.program),
        min_amount_cents=rule_set.min_amount_cents,
        bonuses=tuple(compile_bonus(bonus) for bonus in rule_set.bonuses),
        happy_hours=tuple(compile_happy_hour(hh) for hh in rule_set.happy_hours),
        tiers=compile_tiers(rule_set.tiers),
        caps=compile_caps(rule_set.caps),
        cards=cards,
        cards_by_id={card.id: card for card in cards},
        default_card=rule_set.default_stamp_card,
        profiles=profiles,
    )
