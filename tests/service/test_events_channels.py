"""Channel rules on real-world traffic: page URL, referrer and campaign -> channel.

The expected channels follow the published default channel grouping for these
source/medium combinations; no database is needed.
"""

from __future__ import annotations

import pytest

from api.service.event_rules import DEFAULTS, compile_rules
from api.service.event_sources import event_source

RULES = compile_rules(DEFAULTS, ["awareness", "consideration", "decision", "retention", "advocacy"])
SITE = "https://shop.example/landing"

# (page URL query, referrer, context.campaign, expected channel)
CASES = [
    ("", None, None, "Direct"),
    ("", "https://shop.example/other", None, "Direct"),  # the site itself
    ("?utm_source=google&utm_medium=cpc", None, None, "Paid Search"),
    ("?utm_source=bing&utm_medium=ppc", None, None, "Paid Search"),
    ("?gclid=Cj0KCQ", None, None, "Paid Search"),
    ("?msclkid=abc", None, None, "Paid Search"),
    ("?gbraid=0AAAA", None, None, "Paid Search"),
    ("", "https://www.google.com/", None, "Organic Search"),
    ("", "https://www.google.co.uk/search?q=shoes", None, "Organic Search"),
    ("", "https://duckduckgo.com/", None, "Organic Search"),
    ("", "https://search.yahoo.com/search?p=x", None, "Organic Search"),
    ("", "https://www.bing.com/", None, "Organic Search"),
    ("", "https://yandex.ru/", None, "Organic Search"),
    ("", "https://www.ecosia.org/", None, "Organic Search"),
    ("?utm_source=google&utm_medium=organic", None, None, "Organic Search"),
    ("?utm_source=facebook&utm_medium=paid_social", None, None, "Paid Social"),
    ("?utm_source=fb&utm_medium=cpc", None, None, "Paid Social"),
    ("?utm_source=ig&utm_medium=paid", None, None, "Paid Social"),
    ("?utm_source=linkedin&utm_medium=cpc", None, None, "Paid Social"),
    ("?ttclid=E.C.P", None, None, "Paid Social"),
    ("?li_fat_id=1", None, None, "Paid Social"),
    ("", "https://l.facebook.com/", None, "Organic Social"),
    ("", "https://lm.facebook.com/l.php", None, "Organic Social"),
    ("?fbclid=IwAR", None, None, "Organic Social"),
    ("", "https://t.co/abc", None, "Organic Social"),
    ("", "https://www.linkedin.com/feed/", None, "Organic Social"),
    ("", "https://lnkd.in/x", None, "Organic Social"),
    ("", "https://www.reddit.com/r/x", None, "Organic Social"),
    ("", "https://www.instagram.com/", None, "Organic Social"),
    ("", "https://www.pinterest.co.uk/", None, "Organic Social"),
    ("?utm_source=twitter&utm_medium=social", None, None, "Organic Social"),
    ("?utm_source=partner&utm_medium=social-media", None, None, "Organic Social"),
    ("", "https://www.youtube.com/watch?v=1", None, "Organic Video"),
    ("?utm_source=youtube&utm_medium=cpv", None, None, "Paid Video"),
    ("?utm_source=vimeo&utm_medium=video", None, None, "Organic Video"),
    ("", "https://www.amazon.com/", None, "Organic Shopping"),
    ("?utm_source=ebay&utm_medium=cpc", None, None, "Paid Shopping"),
    ("?utm_source=x&utm_medium=cpc&utm_campaign=spring-shopping", None, None, "Paid Shopping"),
    ("?utm_source=criteo&utm_medium=cpc&utm_campaign=shop-retarget", None, None, "Paid Shopping"),
    ("?utm_source=criteo&utm_medium=retargeting", None, None, "Paid Other"),
    ("?utm_source=dv360&utm_medium=display", None, None, "Display"),
    ("?utm_source=gdn&utm_medium=banner", None, None, "Display"),
    ("?utm_source=taboola&utm_medium=cpm", None, None, "Display"),
    ("?dclid=CJ", None, None, "Display"),
    ("?utm_source=newsletter&utm_medium=email", None, None, "Email"),
    ("?utm_source=Newsletter&utm_medium=E-Mail", None, None, "Email"),
    ("?utm_source=email&utm_medium=blast", None, None, "Email"),
    ("", "https://mail.google.com/", None, "Referral"),
    ("", "https://news.ycombinator.com/item?id=1", None, "Referral"),
    ("", "https://blog.example.org/post", None, "Referral"),
    ("?utm_source=awin&utm_medium=affiliate", None, None, "Affiliates"),
    ("?utm_source=spotify&utm_medium=audio", None, None, "Audio"),
    ("?utm_source=sms&utm_medium=text", None, None, "SMS"),
    ("?utm_source=braze&utm_medium=sms", None, None, "SMS"),
    ("?utm_source=firebase&utm_medium=notif", None, None, "Mobile Push Notifications"),
    ("?utm_source=app&utm_medium=web-push", None, None, "Mobile Push Notifications"),
    ("?utm_source=podcast&utm_medium=(none)", None, None, "Unassigned"),
    ("?utm_source=partnerco", None, None, "Unassigned"),
    (
        "?utm_campaign=cross-network-q1&utm_source=google&utm_medium=cpc",
        None,
        None,
        "Cross-network",
    ),
    # context.campaign wins over the URL; a click id alongside UTM does not change the source.
    ("?utm_source=bing&utm_medium=cpc", None, {"source": "newsletter", "medium": "email"}, "Email"),
    ("?gclid=1&utm_source=facebook&utm_medium=paid", None, None, "Paid Social"),
]


@pytest.mark.parametrize(("query", "referrer", "campaign", "channel"), CASES)
def test_default_channel_grouping(
    query: str, referrer: str | None, campaign: dict[str, str] | None, channel: str
) -> None:
    src = event_source(campaign, SITE + query, referrer)
    source, medium = (src.source, src.medium) if src.source else ("(direct)", "(none)")
    assert (
        RULES.channel(source, medium or "(not set)", src.campaign, src.referrer_host, src.click_id)
        == channel
    )


def test_an_unreadable_url_has_no_source() -> None:
    assert event_source(None, "http://[::1", "https://[bad") == event_source(None, None, None)
