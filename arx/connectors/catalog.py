"""Every connector ARX ships, imported here so that each registers itself.

Adding a connector: write ``arx/connectors/<tool>.py`` with a ``@register``
class and add its import below.
"""

from __future__ import annotations

from arx.connectors import (  # noqa: F401  (register on import)
    crowdstrike,
    jira,
    okta,
    sentinel,
    splunk,
)
from arx.connectors.base import BaseConnector
from arx.connectors.registry import all_connectors


def connectors() -> dict[str, type[BaseConnector]]:
    return all_connectors()
