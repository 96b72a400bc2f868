"""The param catalog: which params each connector operation declares, for policy.

Org rules match on a call's params (``match.params`` in ``rego/arx/org``),
and a rule must not name a param its operations do not have: the org's
policy check (``data.arx.org.valid``) compares every params path against this
catalog. It is derived from the operation tables (the single source of
truth) and shipped as data in the base bundle, ``rego/arx/catalog/data.json``
(``data.arx.catalog``)::

    {connector: {operation: {"kind": …, "target_param": … | null,
                             "params": {"<dotted path>": "<JSON type>"}}}}

Each path is a field of the operation's params Struct as its JSON schema
(``msgspec.json.schema``) describes it; a nested Struct adds its own fields
under ``parent.child``. The type is one of string, number, integer, boolean,
array or object (an optional field has the type of its value). A field the
catalog cannot give one type (a union of different types, ``Any``) fails the
generation rather than being left out, so a rule can never rely on a guess.

``python -m arx.policy.catalog --write`` regenerates the file; ``--check``
exits 1 when it differs from what the tables produce (scripts/check-policies.sh
runs it, and a unit test does too).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

import msgspec

from arx.connectors.catalog import connectors

# Where the base bundle (root "arx") keeps it: data.arx.catalog.
CATALOG_PATH: Final = Path(__file__).resolve().parents[2] / "rego" / "arx" / "catalog" / "data.json"

JSON_TYPES: Final = frozenset({"string", "number", "integer", "boolean", "array", "object"})


class CatalogError(ValueError):
    """An operation's params cannot be described in the catalog."""


def build() -> dict[str, dict[str, dict[str, Any]]]:
    """The catalog of every registered connector's operations."""
    return {
        connector_id: {
            name: {
                # The policy input's "operation", as ARX sends it (arx.policy.input):
                # Rego tests build their calls from these, never from copies.
                "kind": op.kind.value,
                "base_risk": op.base_risk,
                "reversible": op.reversible,
                "target_type": op.target_type,
                "inverse": op.inverse,
                "target_param": op.target_param,
                "params": param_paths(op.params, where=f"{connector_id} {name}"),
            }
            for name, op in cls.operations.items()
        }
        for connector_id, cls in connectors().items()
    }


def render() -> str:
    """The catalog as the file holds it: sorted keys, two-space indent, final newline."""
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def param_paths(params: type[msgspec.Struct], *, where: str = "") -> dict[str, str]:
    """``{dotted path: JSON type}`` for a params Struct and the Structs nested in it."""
    schema = msgspec.json.schema(params)
    paths: dict[str, str] = {}
    _walk(schema, schema.get("$defs", {}), prefix="", expanding=(), out=paths, where=where)
    return paths


def _walk(
    node: dict[str, Any],
    defs: dict[str, Any],
    *,
    prefix: str,
    expanding: tuple[str, ...],
    out: dict[str, str],
    where: str,
) -> None:
    """Record the fields of the object schema ``node`` (a ``$ref`` or inline)."""
    name, obj = _resolve(node, defs)
    if name in expanding:  # a Struct that contains itself: its fields are listed once
        return
    if name is not None:
        expanding = (*expanding, name)
    for field, sub in obj.get("properties", {}).items():
        if "." in field:
            raise CatalogError(f"{where}: param {field!r} has a '.', which paths use as separator")
        path = f"{prefix}{field}"
        json_type, struct = _type_of(sub, defs, what=f"{where}: param {path}")
        out[path] = json_type
        if struct is not None:
            _walk(struct, defs, prefix=f"{path}.", expanding=expanding, out=out, where=where)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    ref = node.get("$ref")
    if ref is None:
        return None, node
    name = ref.rsplit("/", 1)[-1]
    return name, defs[name]


def _type_of(
    node: dict[str, Any], defs: dict[str, Any], *, what: str
) -> tuple[str, dict[str, Any] | None]:
    """The JSON type of a field, and its schema when it is a nested Struct to walk."""
    alternatives = [
        alt for alt in node.get("anyOf", [node]) if _resolve(alt, defs)[1].get("type") != "null"
    ]
    types = {_single_type(_resolve(alt, defs)[1], what=what) for alt in alternatives}
    if types == {"integer", "number"}:
        types = {"number"}
    if len(types) != 1:
        raise CatalogError(f"{what} has no single JSON type (found {sorted(types) or 'none'})")
    (json_type,) = types
    # A nested Struct (one object alternative with declared fields) is walked.
    walk = (
        json_type == "object"
        and len(alternatives) == 1
        and "properties" in _resolve(alternatives[0], defs)[1]
    )
    return json_type, alternatives[0] if walk else None


def _single_type(schema: dict[str, Any], *, what: str) -> str:
    declared = schema.get("type")
    if isinstance(declared, str) and declared in JSON_TYPES:
        return declared
    if "enum" in schema:  # an Enum or a Literal: the type its values share
        types = {_value_type(v) for v in schema["enum"]}
        if types == {"integer", "number"}:
            types = {"number"}
        if len(types) == 1:
            return types.pop()
    raise CatalogError(f"{what} has no single JSON type")


def _value_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null" if value is None else type(value).__name__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m arx.policy.catalog", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="regenerate the catalog file")
    action.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs from the tables"
    )
    parser.add_argument("--path", type=Path, default=CATALOG_PATH, help="the catalog file")
    args = parser.parse_args(argv)
    expected = render()
    if args.write:
        args.path.parent.mkdir(parents=True, exist_ok=True)
        args.path.write_text(expected, encoding="utf-8")
        print(f"wrote {args.path}")
        return 0
    try:
        current = args.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if current != expected:
        print(
            f"{args.path} is not what the operation tables produce; "
            "run: python -m arx.policy.catalog --write",
            file=sys.stderr,
        )
        return 1
    print(f"{args.path} matches the operation tables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
