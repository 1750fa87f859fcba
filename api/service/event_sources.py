"""Where an event came from: UTM parameters, click ids and referrers -> a traffic source.

An event's source is read once, when it is ingested, in this order:

1. UTM parameters, from ``context.campaign`` or else from the page URL's query;
2. a click id in the page URL (``gclid``, ``msclkid`` …), which names the ad network
   and a paid medium, as auto-tagging does;
3. a referrer on another host: a known search engine gives (engine, ``organic``), any
   other site (site name, ``referral``);
4. none of these: the event carries no source (it continues a session, or starts a
   direct one).

The lists of search engines, social sites, video and shopping sites are shipped here;
nothing is downloaded. They give each source a category that channel rules can test
(``source_category``), as the widely used default channel grouping does.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

SEARCH, SOCIAL, VIDEO, SHOPPING = "search", "social", "video", "shopping"

# A source name (utm_source as people write it, or a site's name) -> its category.
CATEGORIES: dict[str, str] = {
    **dict.fromkeys(
        (
            "google",
            "bing",
            "yahoo",
            "duckduckgo",
            "baidu",
            "yandex",
            "ecosia",
            "ask",
            "aol",
            "naver",
            "seznam",
            "qwant",
            "startpage",
            "sogou",
            "so.com",
            "360.cn",
            "daum",
            "brave",
            "mojeek",
            "dogpile",
            "webcrawler",
            "msn",
            "search",
            "yahoo japan",
            "coccoc",
            "petalsearch",
            "you.com",
            "perplexity",
        ),
        SEARCH,
    ),
    **dict.fromkeys(
        (
            "facebook",
            "fb",
            "meta",
            "instagram",
            "ig",
            "linkedin",
            "twitter",
            "x",
            "t.co",
            "pinterest",
            "reddit",
            "tiktok",
            "snapchat",
            "tumblr",
            "quora",
            "vk",
            "weibo",
            "whatsapp",
            "telegram",
            "discord",
            "threads",
            "mastodon",
            "messenger",
            "line",
            "wechat",
            "xing",
            "bluesky",
            "nextdoor",
            "social",
        ),
        SOCIAL,
    ),
    **dict.fromkeys(("youtube", "vimeo", "twitch", "dailymotion", "wistia"), VIDEO),
    **dict.fromkeys(
        (
            "amazon",
            "ebay",
            "etsy",
            "walmart",
            "shopify",
            "idealo",
            "pricerunner",
            "shopzilla",
            "google shopping",
            "shopping",
            "aliexpress",
            "target",
        ),
        SHOPPING,
    ),
}

# Hosts known by a domain of their own (a suffix match) -> source name.
DOMAINS: dict[str, str] = {
    "t.co": "twitter",
    "x.com": "twitter",
    "lnkd.in": "linkedin",
    "fb.com": "facebook",
    "fb.me": "facebook",
    "youtu.be": "youtube",
    "pin.it": "pinterest",
    "search.brave.com": "brave",
    "search.yahoo.com": "yahoo",
    "shopping.google.com": "google shopping",
    "mail.google.com": "gmail",
    "so.com": "so.com",
    "you.com": "you.com",
    "bsky.app": "bluesky",
}
# Hosts known by one of their labels (google.co.uk, l.facebook.com, de.search.yahoo.com).
LABELS = frozenset(n for n in CATEGORIES if "." not in n and " " not in n) - {
    "search", "social", "shopping", "x", "line", "ask", "target", "meta", "ig", "fb",
}  # fmt: skip

# Click ids of ad networks -> (source, medium) when no UTM parameter says otherwise.
# fbclid is added by Meta to organic links too, so it names the site but no paid medium.
CLICK_IDS: dict[str, tuple[str, str]] = {
    "gclid": ("google", "cpc"),
    "gbraid": ("google", "cpc"),
    "wbraid": ("google", "cpc"),
    "dclid": ("google", "display"),
    "msclkid": ("bing", "cpc"),
    "yclid": ("yandex", "cpc"),
    "ttclid": ("tiktok", "cpc"),
    "twclid": ("twitter", "cpc"),
    "li_fat_id": ("linkedin", "cpc"),
    "rdt_cid": ("reddit", "cpc"),
    "sccid": ("snapchat", "cpc"),
    "epik": ("pinterest", "cpc"),
    "fbclid": ("facebook", "referral"),
}
UTM = ("source", "medium", "campaign", "term", "content")
MAX_FIELD = 200
# Answers worked out once per value are kept only for values up to this long: an event
# may be 32 KiB, and a cache of 65,536 such keys would hold 2 GiB. Longer values (rare)
# are worked out each time.
MEMO_CHARS = 512


class Source(NamedTuple):
    """An event's traffic source; all None for an event that names none."""

    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    click_id: str | None = None
    referrer_host: str | None = None


def host_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    return host.rstrip(".").lower() if host else None


def source_name(host: str) -> str:
    """A host as a source name: a known site's name, else the host without www."""
    for domain, name in DOMAINS.items():
        if host == domain or host.endswith("." + domain):
            return name
    labels = host.split(".")
    for label in labels[:-1]:
        if label in LABELS:
            return label
    return host[4:] if host.startswith("www.") else host


def category(source: str | None) -> str:
    """The category of a source name (or a host sent as utm_source); '' when none."""
    if not source:
        return ""
    name = source.strip().lower()
    found = CATEGORIES.get(name)
    if found is None and "." in name:
        found = CATEGORIES.get(source_name(name))
    return found or ""


def _clip(value: object) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text[:MAX_FIELD] if text else None


def event_source(
    campaign: dict[str, object] | None, page_url: str | None, referrer: str | None
) -> Source:
    """The traffic source of one event (see the module's docstring for the order)."""
    if not campaign:
        if memo_size(page_url) and memo_size(referrer):
            return _page_source(page_url, referrer)
        return _source(None, page_url, referrer)
    return _source(campaign, page_url, referrer)


def memo_size(value: str | None) -> bool:
    """Whether a value is short enough to be kept as a cache key (see MEMO_CHARS)."""
    return value is None or len(value) <= MEMO_CHARS


@lru_cache(maxsize=1 << 16)
def _page_source(page_url: str | None, referrer: str | None) -> Source:
    # Most events carry no campaign, and a site's page URLs and referrers repeat.
    return _source(None, page_url, referrer)


def _source(
    campaign: dict[str, object] | None, page_url: str | None, referrer: str | None
) -> Source:
    query: dict[str, str] = {}
    if page_url and "?" in page_url:
        try:
            query = {k.lower(): v for k, v in parse_qsl(urlsplit(page_url).query)}
        except ValueError:
            query = {}
    utm: dict[str, str | None] = {}
    if campaign:
        # Segment's context.campaign names the campaign `name` (as utm_campaign).
        utm = {k: _clip(campaign.get("name" if k == "campaign" else k)) for k in UTM}
        utm["campaign"] = utm["campaign"] or _clip(campaign.get("campaign"))
    if not any(utm.values()):
        utm = {k: _clip(query.get("utm_" + k)) for k in UTM}
    click = next((c for c in CLICK_IDS if query.get(c)), None)
    page_host = host_of(page_url)
    ref_host = host_of(referrer)
    if ref_host is not None and ref_host == page_host:
        ref_host = None  # a page of the site itself: no new source
    if utm.get("source") or utm.get("medium"):
        return Source(
            utm.get("source") or "(not set)",
            utm.get("medium") or "(not set)",
            utm.get("campaign"),
            click,
            ref_host,
        )
    if click is not None:
        source, medium = CLICK_IDS[click]
        return Source(source, medium, utm.get("campaign"), click, ref_host)
    if ref_host is not None:
        name = source_name(ref_host)
        medium = "organic" if CATEGORIES.get(name) == SEARCH else "referral"
        return Source(name, medium, None, None, ref_host)
    return Source()
