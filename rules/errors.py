"""Errors the rule engine raises. Each carries a stable machine ``code``."""

from __future__ import annotations


class RulesError(Exception):
    code = "rules_error"


class InvalidOrder(RulesError, ValueError):
    """An order, line or state that cannot be evaluated (naive time, negative quantity…)."""

    code = "invalid_order"


class RefundExceedsOrder(RulesError):
    """A refund asks for more units of a line than were bought and not yet refunded.

    An unknown ``line_ref`` is reported the same way, with ``remaining=0``.
    """

    code = "refund_exceeds_order"

    def __init__(self, line_ref: str, requested: int, remaining: int) -> None:
        super().__init__(
            f"refund of {requested} unit(s) of line {line_ref!r} exceeds the {remaining} "
            "bought and not yet refunded"
        )
        self.line_ref = line_ref
        self.requested = requested
        self.remaining = remaining


class RuleSetMismatch(RulesError):
    """A reversal must use the rule-set version that produced the original decision."""

    code = "rule_set_mismatch"

    def __init__(self, expected: int, given: int) -> None:
        super().__init__(f"decision was made by rule set version {expected}, got {given}")
        self.expected = expected
        self.given = given
