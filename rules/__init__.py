"""Punchline's earn-rule engine: pure functions, no I/O, no clock.

Compile a validated ``schemas.rules.RuleSet`` once per version, then evaluate
orders and reverse them. See docs/adr/0003-rule-engine.md.
"""

from rules.compile import CompiledRuleSet, compile_rule_set
from rules.engine import evaluate
from rules.errors import InvalidOrder, RefundExceedsOrder, RulesError, RuleSetMismatch
from rules.reversal import reverse
from rules.serde import decision_from_dict, decision_to_dict, reversal_from_dict, reversal_to_dict
from rules.tiers import tier_for
from rules.types import (
    ORDER_REF,
    CouponGrant,
    CustomerState,
    Decision,
    Line,
    Order,
    RefundLine,
    Reversal,
    RuleApplied,
)

__all__ = [
    "ORDER_REF",
    "CompiledRuleSet",
    "CouponGrant",
    "CustomerState",
    "Decision",
    "InvalidOrder",
    "Line",
    "Order",
    "RefundExceedsOrder",
    "RefundLine",
    "Reversal",
    "RuleApplied",
    "RuleSetMismatch",
    "RulesError",
    "compile_rule_set",
    "decision_from_dict",
    "decision_to_dict",
    "evaluate",
    "reversal_from_dict",
    "reversal_to_dict",
    "reverse",
    "tier_for",
]
