"""The proxy registry, seen whole: every proxy posearch has, whatever the caller imported.

Proxies are defined on three floors: the zero-cost ones beside the evaluators
(``evaluators.proxies``), those that train or read a supernet (``arch_search.trained_proxies``)
and those that combine proxies over a ground truth (``arch_search.rankers``). This module sits
above all three and imports them plainly, so the import graph shows what the registry depends on
and ``evaluators`` never reaches up to ``arch_search``.
"""

from __future__ import annotations

import arch_search.rankers  # noqa: F401 (registers combined, learned)
import arch_search.trained_proxies  # noqa: F401 (registers short_train, supernet)
from evaluators.proxies import Proxy, ProxyContext, registered_proxies
from posecore.errors import UnknownNameError

__all__ = ["Proxy", "ProxyContext", "get_proxy", "list_proxies"]


def list_proxies() -> list[str]:
    return sorted(registered_proxies())


def get_proxy(name: str, **options) -> Proxy:
    """A built proxy; an unknown name lists the known ones."""
    proxies = registered_proxies()
    if name not in proxies:
        raise UnknownNameError(f"unknown proxy {name!r}; known proxies: {list_proxies()}")
    return proxies[name](**options)
