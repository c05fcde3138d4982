"""Rule sets: an org's earn rules as data (wire contract, stored as JSONB).

A rule set body carries no version: the caller stores each accepted body under
a new version number and passes that number to ``rules.compile_rule_set``.
Every value is bounded, every id is unique, unknown keys are refused, and
multipliers are ``Decimal`` with at most two decimal places (never floats).
Matching on sku, product name and category is case-insensitive.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.common import refuse_nul

RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
Label = Annotated[str, Field(min_length=1, max_length=120)]
Token = Annotated[str, Field(min_length=1, max_length=120)]
Multiplier = Annotated[Decimal, Field(ge=1, le=100, decimal_places=2)]
ClockTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
PositivePoints = Annotated[int, Field(ge=1, le=1_000_000)]

# Rule ids the engine itself uses in ``rules_applied``.
RESERVED_IDS = frozenset({"base", "tier", "cap_per_order", "cap_per_day"})


class ProgramMode(StrEnum):
    SPEND = "spend"
    UNIT = "unit"


class UnitBasis(StrEnum):
    UNIT = "unit"
    VISIT = "visit"


class Rounding(StrEnum):
    FLOOR = "floor"
    HALF_UP = "half_up"
    CEIL = "ceil"


class BonusKind(StrEnum):
    MULTIPLIER = "multiplier"
    FIXED_PER_UNIT = "fixed_per_unit"
    BUNDLE = "bundle"


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class StampEarnMode(StrEnum):
    VISIT = "visit"
    ITEM = "item"
    DIRECT = "direct"


class RewardType(StrEnum):
    PRODUCT = "product"
    PERCENT = "percent"
    FIXED = "fixed"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Rule sets are stored as jsonb, which cannot hold a NUL character.
    _no_nul = field_validator("*", mode="after")(refuse_nul)


def _unique(values: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what}: {value!r}")
        seen.add(value)


class Match(_Model):
    """A line matches when its sku, name or category is listed (case-insensitive)."""

    skus: tuple[Token, ...] = Field(default=(), max_length=500)
    names: tuple[Token, ...] = Field(default=(), max_length=500)
    categories: tuple[Token, ...] = Field(default=(), max_length=500)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not (self.skus or self.names or self.categories):
            raise ValueError("a match needs at least one sku, name or category")
        return self


class PointsProgram(_Model):
    """``spend``: ``points`` per ``per_cents`` of eligible amount, rounded by ``rounding``.
    ``unit``: ``points`` per unit bought (``per: unit``) or per visit (``per: visit``)."""

    mode: ProgramMode = ProgramMode.SPEND
    points: int = Field(default=1, ge=0, le=1_000_000)
    per_cents: int = Field(default=100, ge=1, le=100_000_000)
    per: UnitBasis = UnitBasis.UNIT
    rounding: Rounding = Rounding.FLOOR


class _Bonus(_Model):
    id: RuleId
    label: Label
    match: Match


class MultiplierBonus(_Bonus):
    """Adds base × (multiplier − 1) on the matched lines."""

    kind: Literal[BonusKind.MULTIPLIER]
    multiplier: Multiplier


class FixedPerUnitBonus(_Bonus):
    """Adds ``points`` per paid unit of the matched lines."""

    kind: Literal[BonusKind.FIXED_PER_UNIT]
    points: PositivePoints


class BundleBonus(_Bonus):
    """ "Every ``every`` matched units = ``points``", repeating: floor(units / every) × points."""

    kind: Literal[BonusKind.BUNDLE]
    every: int = Field(ge=1, le=1000)
    points: PositivePoints


Bonus = Annotated[MultiplierBonus | FixedPerUnitBonus | BundleBonus, Field(discriminator="kind")]


class HappyHour(_Model):
    """A multiplier on the points of in-scope lines inside a local weekly window.

    ``weekdays`` name the day a window starts: 22:00-02:00 on ``mon`` covers
    Monday 22:00 to Tuesday 02:00. Times are wall-clock in ``timezone`` (or the
    order's zone when None), start inclusive, end exclusive.
    """

    id: RuleId
    label: Label
    weekdays: tuple[Weekday, ...] = Field(min_length=1, max_length=7)
    start: ClockTime
    end: ClockTime
    timezone: str | None = Field(default=None, max_length=64)
    scope: Match | None = None
    multiplier: Multiplier

    @field_validator("weekdays")
    @classmethod
    def _unique_days(cls, days: tuple[Weekday, ...]) -> tuple[Weekday, ...]:
        _unique(days, "weekday")
        return days

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str | None) -> str | None:
        if zone is not None:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown IANA time zone {zone!r}") from exc
        return zone

    @model_validator(mode="after")
    def _non_empty_window(self) -> Self:
        if self.start == self.end:
            raise ValueError("happy hour start and end must differ")
        return self


class Tier(_Model):
    name: Annotated[str, Field(min_length=1, max_length=40)]
    threshold: int = Field(ge=0, le=10**12, description="lifetime points to reach the tier")
    multiplier: Multiplier = Decimal(1)


class Caps(_Model):
    per_order: int | None = Field(default=None, ge=1, le=10**9)
    per_day: int | None = Field(default=None, ge=1, le=10**9)


class Reward(_Model):
    """``product``: value = price covered in cents (0: any); ``percent``: 1-100;
    ``fixed``: cents off."""

    name: Label
    type: RewardType
    value: int = Field(default=0, ge=0, le=10**9)
    validity_days: int = Field(default=30, ge=1, le=3650)

    @model_validator(mode="after")
    def _value_fits_type(self) -> Self:
        if self.type is RewardType.PERCENT and not 1 <= self.value <= 100:
            raise ValueError("a percent reward needs a value from 1 to 100")
        if self.type is RewardType.FIXED and self.value < 1:
            raise ValueError("a fixed reward needs a value of at least 1 cent")
        return self


class StampCard(_Model):
    id: RuleId
    label: Label
    slots: int = Field(ge=1, le=100)
    earn: StampEarnMode
    min_spend_cents: int = Field(default=0, ge=0, le=10**10)
    match: Match | None = None
    reward: Reward

    @model_validator(mode="after")
    def _earn_fields(self) -> Self:
        if (self.earn is StampEarnMode.ITEM) != (self.match is not None):
            raise ValueError("a match is required for earn=item and refused otherwise")
        if self.min_spend_cents and self.earn is not StampEarnMode.VISIT:
            raise ValueError("min_spend_cents applies to earn=visit only")
        return self


class RuleSet(_Model):
    program: PointsProgram = Field(default_factory=PointsProgram)
    min_amount_cents: int = Field(default=0, ge=0, le=10**10)
    exclusions: Match | None = None
    bonuses: tuple[Bonus, ...] = Field(default=(), max_length=200)
    happy_hours: tuple[HappyHour, ...] = Field(default=(), max_length=50)
    tiers: tuple[Tier, ...] = Field(default=(), max_length=20)
    caps: Caps = Field(default_factory=Caps)
    stamp_cards: tuple[StampCard, ...] = Field(default=(), max_length=20)
    default_stamp_card: RuleId | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        ids = [r.id for r in (*self.bonuses, *self.happy_hours, *self.stamp_cards)]
        _unique(ids, "rule id")
        reserved = RESERVED_IDS.intersection(ids)
        if reserved:
            raise ValueError(f"reserved rule ids: {sorted(reserved)}")
        _unique((t.name for t in self.tiers), "tier name")
        thresholds = [t.threshold for t in self.tiers]
        if any(a >= b for a, b in pairwise(thresholds)):
            raise ValueError("tier thresholds must be strictly increasing")
        cards = {c.id for c in self.stamp_cards}
        if self.default_stamp_card is not None and self.default_stamp_card not in cards:
            raise ValueError(f"default_stamp_card {self.default_stamp_card!r} is not a card")
        return self

    @classmethod
    def default(cls) -> RuleSet:
        """1 point per 100 cents (floor), and a 10-slot direct stamp card "default"."""
        card = StampCard(
            id="default",
            label="Stamp card",
            slots=10,
            earn=StampEarnMode.DIRECT,
            reward=Reward(name="Free Coffee", type=RewardType.PRODUCT, validity_days=30),
        )
        return cls(stamp_cards=(card,), default_stamp_card="default")
