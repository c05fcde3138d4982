"""Exclusions: categories, skus or names that never earn (no base, no bonus, no stamps)."""

from __future__ import annotations

from rules_factories import card, compiled, line, multiplier, order, run

GIFT_CARDS = {"categories": ["Gift Cards"], "skus": ["GIFT-25"]}


def test_excluded_lines_earn_no_base_bonus_or_stamps() -> None:
    rules = compiled(
        exclusions=GIFT_CARDS,
        bonuses=[multiplier("all-x2", "2", categories=["gift cards", "drinks"])],
        stamp_cards=[card("coffee", 10, "item", on={"categories": ["gift cards", "drinks"]})],
    )
    decision = run(
        rules,
        order(
            line("1", "Latte", 1, 400, category="drinks"),
            line("2", "Gift card", 1, 2500, category="gift cards"),
        ),
    )
    assert decision.points == 8  # base 4 + bonus 4, the gift card earns nothing
    assert decision.line_points == {"1": 8, "2": 0}
    assert decision.line_stamps == {"coffee": {"1": 1}}


def test_exclusion_by_sku_case_insensitive() -> None:
    rules = compiled(exclusions=GIFT_CARDS)
    decision = run(rules, order(line("1", "Card", 1, 2500, sku="gift-25"), line("2", "X", 1, 300)))
    assert decision.points == 3


def test_exclusion_by_name() -> None:
    rules = compiled(exclusions={"names": ["Deposit"]})
    assert run(rules, order(line("1", "deposit", 1, 2500))).points == 0


def test_min_amount_is_judged_on_the_sale_including_excluded_lines() -> None:
    rules = compiled(exclusions=GIFT_CARDS, min_amount_cents=1000)
    decision = run(rules, order(line("1", "Gift", 1, 2500, category="gift cards")))
    assert (decision.status, decision.points) == ("applied", 0)


def test_only_excluded_lines_is_no_visit() -> None:
    rules = compiled(
        exclusions=GIFT_CARDS,
        program={"mode": "unit", "per": "visit", "points": 5},
        stamp_cards=[card("visits", 5, "visit")],
    )
    decision = run(rules, order(line("1", "Gift", 1, 2500, category="gift cards")))
    assert (decision.points, decision.stamps) == (0, {})


def test_visit_card_min_spend_counts_only_the_eligible_amount() -> None:
    rules = compiled(exclusions=GIFT_CARDS, stamp_cards=[card("visits", 5, "visit", min_spend=500)])
    decision = run(
        rules,
        order(line("1", "Gift", 1, 2500, category="gift cards"), line("2", "Tea", 1, 300)),
    )
    assert decision.stamps == {}
