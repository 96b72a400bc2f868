"""From a SCIM filter to the indexed lookup that narrows the rows it is matched against.

Filtering itself happens in Python, over the org's rows, with scim2-models'
evaluator (``ScimFilter.match``): the filter is parsed by its grammar and
never becomes SQL text, so no filter can inject anything. An org has at most
thousands of members, so a full scan is cheap; but IdPs look a user up
before every change (``userName eq "..."``), so the common equality on an
indexed attribute is first narrowed in SQL, with the value as a parameter.

Guarantee: a lookup returns a superset of the rows the filter matches (the
filter is still applied to what it returns). That is why only ASCII values
are narrowed: PostgreSQL's ``lower()`` and the evaluator's case folding
(Unicode NFC, then ``str.lower``) agree on ASCII and may not beyond it.
"""

from __future__ import annotations

from typing import Any, LiteralString
from uuid import UUID

import msgspec
from scim2_models.path.expressions import (
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
)

from arx.scim import repo
from arx.scim.types import Group, User


class Lookup(msgspec.Struct, frozen=True, kw_only=True):
    query: LiteralString
    params: dict[str, Any]


# (attribute, sub-attribute) -> the narrowing query and its parameter's name.
_USER_LOOKUPS: dict[tuple[str, str | None], tuple[LiteralString, str]] = {
    ("username", None): (repo.USERS_BY_USER_NAME, "user_name"),
    ("externalid", None): (repo.USERS_BY_EXTERNAL_ID, "external_id"),
    ("emails", "value"): (repo.USERS_BY_EMAIL, "email"),
    ("id", None): (repo.USERS_BY_ID, "user_id"),
}
_GROUP_LOOKUPS: dict[tuple[str, str | None], tuple[LiteralString, str]] = {
    ("displayname", None): (repo.GROUPS_BY_NAME, "display_name"),
    ("externalid", None): (repo.GROUPS_BY_EXTERNAL_ID, "external_id"),
    ("id", None): (repo.GROUPS_BY_ID, "group_id"),
}


def user_lookup(node: FilterNode | None) -> Lookup | None:
    return _lookup(node, _USER_LOOKUPS, str(User.__schema__))


def group_lookup(node: FilterNode | None) -> Lookup | None:
    return _lookup(node, _GROUP_LOOKUPS, str(Group.__schema__))


def _lookup(
    node: FilterNode | None,
    table: dict[tuple[str, str | None], tuple[LiteralString, str]],
    schema: str,
) -> Lookup | None:
    if isinstance(node, LogicalExpr) and node.op is LogicalOperator.and_:
        # Every row a conjunction matches, each of its terms matches.
        for term in node.terms:
            found = _lookup(term, table, schema)
            if found is not None:
                return found
        return None
    if not (
        isinstance(node, Comparison)
        and node.op is CompareOperator.eq
        and isinstance(node.value, str)
        and node.value.isascii()
        and "\x00" not in node.value
    ):
        return None
    path = node.attr_path
    if path.uri is not None and path.uri.lower() != schema.lower():
        return None
    entry = table.get((path.attr.lower(), path.sub_attr.lower() if path.sub_attr else None))
    if entry is None:
        return None
    query, name = entry
    value: Any = node.value
    if name in ("user_id", "group_id"):
        # ids are UUIDs: any other string matches nothing, and so does NULL.
        try:
            value = UUID(node.value)
        except ValueError:
            value = None
    return Lookup(query=query, params={name: value})
