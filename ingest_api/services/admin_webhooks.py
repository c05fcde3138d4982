"""Which webhook URLs an org may register.

In production a URL must be https and must not name a loopback, private,
link-local or otherwise internal address literally (the dispatcher should not be
a way into the operator's own network). Names are not resolved here: a name that
resolves to an internal address must be stopped by egress rules (docs/adr/0005).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ingest_api.services.phones import invalid

_INTERNAL_NAMES = ("localhost", ".localhost", ".local", ".internal")


def _internal_host(host: str) -> bool:
    lowered = host.lower().rstrip(".")
    if lowered == "localhost" or lowered.endswith(_INTERNAL_NAMES[1:]):
        return True
    try:
        address = ipaddress.ip_address(lowered.strip("[]"))
    except ValueError:
        return False
    return not address.is_global


def check_url_policy(url: str, *, production: bool) -> None:
    if not production:
        return
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise invalid("url", "webhook URLs must use https")
    if _internal_host(parts.hostname or ""):
        raise invalid("url", "webhook URLs must name a public host")
