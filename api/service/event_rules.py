"""A workspace's rules for turning events into journeys, their defaults and checks.

The rules are one JSON document (``GET``/``PUT /v1/event-rules``); a field left out
takes its default below. :func:`compile_rules` checks a document against the
workspace's stages and turns it into the :class:`Rules` derivation uses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .errors import FieldError, InvalidInput, counted
from .event_sources import category, memo_size

MEMO = 1 << 16  # answers kept per compiled rules

# Medium of paid traffic, as the default channel grouping writes it.
PAID = r".*cp.*|ppc|retargeting|paid.*"
SHOP_CAMPAIGN = r".*(([^a-df-z]|^)shop|shopping).*"
SOCIAL_MEDIA = r"social|social-network|social-media|sm|social network|social media"
EMAIL = r"email|e-mail|e_mail|e mail"

# The default channel grouping, in its order of evaluation (first match wins).
DEFAULT_CHANNELS: list[dict[str, str]] = [
    {"channel": "Direct", "source": r"\(direct\)", "medium": r"\(not set\)|\(none\)"},
    {"channel": "Cross-network", "campaign": r".*cross-network.*"},
    {"channel": "Paid Shopping", "source_category": "shopping", "medium": PAID},
    {"channel": "Paid Shopping", "campaign": SHOP_CAMPAIGN, "medium": PAID},
    {"channel": "Paid Search", "source_category": "search", "medium": PAID},
    {"channel": "Paid Social", "source_category": "social", "medium": PAID},
    {"channel": "Paid Video", "source_category": "video", "medium": PAID},
    {"channel": "Display", "medium": r"display|banner|expandable|interstitial|cpm"},
    {"channel": "Paid Other", "medium": PAID},
    {"channel": "Organic Shopping", "source_category": "shopping"},
    {"channel": "Organic Shopping", "campaign": SHOP_CAMPAIGN},
    {"channel": "Organic Social", "source_category": "social"},
    {"channel": "Organic Social", "medium": SOCIAL_MEDIA},
    {"channel": "Organic Video", "source_category": "video"},
    {"channel": "Organic Video", "medium": r".*video.*"},
    {"channel": "Organic Search", "source_category": "search"},
    {"channel": "Organic Search", "medium": "organic"},
    {"channel": "Referral", "medium": r"referral|app|link"},
    {"channel": "Email", "source": EMAIL},
    {"channel": "Email", "medium": EMAIL},
    {"channel": "Affiliates", "medium": r"affiliates?"},
    {"channel": "Audio", "medium": "audio"},
    {"channel": "SMS", "source": "sms"},
    {"channel": "SMS", "medium": "sms"},
    {"channel": "Mobile Push Notifications", "medium": r".*push|.*mobile.*|.*notification.*"},
    {"channel": "Mobile Push Notifications", "source": "firebase"},
]
CONDITIONS = ("source", "medium", "campaign", "referrer_host", "source_category", "click_id")

DEFAULT_STAGE_RULES: list[dict[str, Any]] = [
    {
        "stage": "advocacy",
        "events": ["Product Reviewed", "Product Shared", "Cart Shared", "Referral Sent",
                   "share", "refer_friend"],
        "path_prefixes": ["/review", "/refer"],
    },
    {
        "stage": "decision",
        "events": ["Product Added", "Cart Viewed", "Checkout Started", "Checkout Step Viewed",
                   "Checkout Step Completed", "Payment Info Entered", "Order Completed",
                   "add_to_cart", "view_cart", "begin_checkout", "add_shipping_info",
                   "add_payment_info", "purchase"],
        "path_prefixes": ["/cart", "/basket", "/checkout"],
    },
    {
        "stage": "consideration",
        "events": ["Product Viewed", "Product List Viewed", "Product Clicked",
                   "Products Searched", "view_item", "view_item_list", "select_item",
                   "search", "view_search_results"],
        "path_prefixes": ["/product", "/products", "/p/", "/pricing", "/compare"],
    },
]  # fmt: skip

DEFAULTS: dict[str, Any] = {
    "conversions": {
        "events": ["Order Completed", "purchase"],
        "value_properties": ["revenue", "value", "total"],
    },
    "channels": DEFAULT_CHANNELS,
    "fallback_channel": "Unassigned",
    "stages": {
        "rules": DEFAULT_STAGE_RULES,
        "default": "awareness",
        "after_conversion": "retention",
    },
    "session_timeout_minutes": 30,
    "lookback_days": 90,
}


@dataclass(frozen=True)
class ChannelRule:
    channel: str
    conditions: tuple[tuple[str, re.Pattern[str]], ...]

    def matches(self, fields: dict[str, str]) -> bool:
        return all(p.fullmatch(fields[name]) for name, p in self.conditions)


@dataclass(frozen=True)
class StageRule:
    stage: str
    events: frozenset[str]
    path_prefixes: tuple[str, ...]

    def matches(self, event: str | None, path: str | None) -> bool:
        if event is not None and event in self.events:
            return True
        return path is not None and path.startswith(self.path_prefixes)


@dataclass(frozen=True)
class Rules:
    conversions: frozenset[str]
    value_properties: tuple[str, ...]
    channels: tuple[ChannelRule, ...]
    fallback_channel: str
    stage_rules: tuple[StageRule, ...]
    default_stage: str | None
    after_conversion_stage: str | None
    stage_rank: dict[str, int]  # the workspace's funnel order
    session_timeout: timedelta
    lookback: timedelta
    # Answers already worked out: sources and pages repeat across a workspace's events.
    _channels: dict[tuple[Any, ...], str] = field(default_factory=dict, compare=False, repr=False)
    _stages: dict[tuple[Any, ...], tuple[str | None, int]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def channel(
        self,
        source: str,
        medium: str,
        campaign: str | None,
        referrer_host: str | None,
        click_id: str | None,
    ) -> str:
        key = (source, medium, campaign, referrer_host, click_id)
        found = self._channels.get(key)
        if found is None:
            if len(self._channels) >= MEMO:
                self._channels.clear()
            found = self._channels[key] = self._channel(*key)
        return found

    def stage(self, event: str | None, path: str | None) -> tuple[str | None, int]:
        """The furthest stage (and its rank in the funnel) one event reaches; (None, -1)
        when no stage rule matches it."""
        key = (event, path)
        found = self._stages.get(key)
        if found is None:
            stage, rank = None, -1
            for rule in self.stage_rules:
                r = self.stage_rank.get(rule.stage, -1)
                if r > rank and rule.matches(event, path):
                    stage, rank = rule.stage, r
            found = (stage, rank)
            if memo_size(path):  # a page path may be 2,000 characters
                if len(self._stages) >= MEMO:
                    self._stages.clear()
                self._stages[key] = found
        return found

    def _channel(
        self,
        source: str,
        medium: str,
        campaign: str | None,
        referrer_host: str | None,
        click_id: str | None,
    ) -> str:
        fields = {
            "source": source,
            "medium": medium,
            "campaign": campaign or "",
            "referrer_host": referrer_host or "",
            "source_category": category(source),
            "click_id": click_id or "",
        }
        for rule in self.channels:
            if rule.matches(fields):
                return rule.channel
        return self.fallback_channel


def with_defaults(stored: dict[str, Any]) -> dict[str, Any]:
    """The full rules document: what was stored, defaults for the rest."""
    rules = {**DEFAULTS, **stored}
    rules["conversions"] = {**DEFAULTS["conversions"], **(stored.get("conversions") or {})}
    rules["stages"] = {**DEFAULTS["stages"], **(stored.get("stages") or {})}
    return rules


def compile_rules(document: dict[str, Any], stages: Sequence[str]) -> Rules:
    """Check a full rules document against the workspace's stages (in funnel order) and
    compile it; raises InvalidInput pointing at every bad field."""
    errors: list[FieldError] = []
    channels = []
    for i, rule in enumerate(document["channels"]):
        conditions = []
        for name in CONDITIONS:
            if rule.get(name) is None:
                continue
            try:
                conditions.append((name, re.compile(rule[name], re.IGNORECASE)))
            except re.error as e:
                errors.append(FieldError(f"/channels/{i}/{name}", f"Not a valid regex: {e}."))
        channels.append(ChannelRule(rule["channel"], tuple(conditions)))
    known = set(stages)
    stage_doc = document["stages"]

    def check_stage(name: str | None, pointer: str) -> None:
        if name is not None and name not in known:
            listed = ", ".join(stages) or "none"
            errors.append(FieldError(pointer, f"Unknown stage {name!r}; stages: {listed}."))

    stage_rules = []
    for i, rule in enumerate(stage_doc["rules"]):
        check_stage(rule["stage"], f"/stages/rules/{i}/stage")
        prefixes = tuple(rule.get("path_prefixes") or ())
        stage_rules.append(StageRule(rule["stage"], frozenset(rule.get("events") or ()), prefixes))
    check_stage(stage_doc.get("default"), "/stages/default")
    check_stage(stage_doc.get("after_conversion"), "/stages/after_conversion")
    if errors:
        wrong = counted(len(errors), "value")
        raise InvalidInput(f"In the event rules, {wrong} invalid; nothing was changed.", errors)
    conversions = document["conversions"]
    return Rules(
        conversions=frozenset(conversions["events"]),
        value_properties=tuple(conversions["value_properties"]),
        channels=tuple(channels),
        fallback_channel=document["fallback_channel"],
        stage_rules=tuple(stage_rules),
        default_stage=stage_doc.get("default"),
        after_conversion_stage=stage_doc.get("after_conversion"),
        stage_rank={name: k for k, name in enumerate(stages)},
        session_timeout=timedelta(minutes=document["session_timeout_minutes"]),
        lookback=timedelta(days=document["lookback_days"]),
    )


def check(given: dict[str, Any], stages: Sequence[str]) -> Rules:
    """Rules a client sent (defaults for the rest), checked: stage names the client
    gave must be stages of the workspace; default stage rules naming stages the
    workspace does not have are left out."""
    document = with_defaults(given)
    sent = given.get("stages") or {}
    known = set(stages)
    stage_doc = dict(document["stages"])
    if "rules" not in sent:
        stage_doc["rules"] = [r for r in stage_doc["rules"] if r["stage"] in known]
    for key in ("default", "after_conversion"):
        if key not in sent and stage_doc.get(key) not in known:
            stage_doc[key] = None
    return compile_rules({**document, "stages": stage_doc}, stages)


def usable(document: dict[str, Any], stages: Sequence[str]) -> Rules:
    """Rules for deriving journeys even when stages were renamed since they were set:
    stage names the workspace no longer has are dropped (their touches carry no stage)."""
    known = set(stages)
    stage_doc = dict(document["stages"])
    stage_doc["rules"] = [r for r in stage_doc["rules"] if r["stage"] in known]
    for key in ("default", "after_conversion"):
        if stage_doc.get(key) not in known:
            stage_doc[key] = None
    return compile_rules({**document, "stages": stage_doc}, stages)
