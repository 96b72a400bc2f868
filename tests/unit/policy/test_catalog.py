"""The param catalog policy checks org rules against (data.arx.catalog).

It is generated from the connectors' operation tables and committed as
rego/arx/catalog/data.json; a table that changes without the file being
regenerated would let the policy check accept a rule on a param that no
longer exists (or refuse one on a param that does), so drift fails here.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import pytest

from arx.connectors.catalog import connectors
from arx.policy import catalog


def test_the_committed_catalog_matches_the_operation_tables() -> None:
    assert catalog.CATALOG_PATH.read_text(encoding="utf-8") == catalog.render(), (
        "rego/arx/catalog/data.json is stale: run python -m arx.policy.catalog --write"
    )


def test_every_registered_operation_is_in_the_catalog() -> None:
    built = catalog.build()
    for connector_id, cls in connectors().items():
        assert set(built[connector_id]) == set(cls.operations)
        for name, op in cls.operations.items():
            entry = built[connector_id][name]
            assert entry["kind"] == op.kind.value
            assert entry["target_param"] == op.target_param
            if op.target_param is not None:
                assert op.target_param in entry["params"]


def test_the_rendering_is_deterministic_json() -> None:
    text = catalog.render()
    assert text.endswith("}\n")
    assert json.loads(text) == catalog.build()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


class Window(msgspec.Struct, kw_only=True):
    minutes: int
    mode: Mode = Mode.FAST


class Tree(msgspec.Struct, kw_only=True):
    name: str
    child: Tree | None = None


class Nested(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    ids: Annotated[list[str], msgspec.Meta(min_length=1)]
    filter: str | None = None
    limit: int = 10
    ratio: float = 0.5
    either: int | float = 1
    force: bool = False
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    window: Window | None = None
    windows: list[Window] = msgspec.field(default_factory=list)
    level: Literal[1, 2, 3] = 1
    tree: Tree | None = None


def test_nested_structs_give_dotted_paths_and_json_types() -> None:
    assert catalog.param_paths(Nested) == {
        "ids": "array",
        "filter": "string",
        "limit": "integer",
        "ratio": "number",
        "either": "number",
        "force": "boolean",
        "labels": "object",
        "window": "object",
        "window.minutes": "integer",
        "window.mode": "string",
        "windows": "array",
        "level": "integer",
        # A Struct that contains itself is listed once, not without end.
        "tree": "object",
        "tree.name": "string",
        "tree.child": "object",
    }


class Mixed(msgspec.Struct):
    value: int | str


class Dotted(msgspec.Struct):
    value: str = msgspec.field(name="a.b")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (Mixed, "param value has no single JSON type"),
        (Dotted, "param 'a.b' has a '.'"),
    ],
)
def test_a_param_the_catalog_cannot_describe_fails_the_generation(
    params: type[msgspec.Struct], message: str
) -> None:
    with pytest.raises(catalog.CatalogError, match=message):
        catalog.param_paths(params, where="test op")


def test_check_fails_on_a_stale_file_and_write_repairs_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "data.json"
    assert catalog.main(["--check", "--path", str(path)]) == 1
    path.write_text('{"crowdstrike": {}}\n', encoding="utf-8")
    assert catalog.main(["--check", "--path", str(path)]) == 1
    assert "python -m arx.policy.catalog --write" in capsys.readouterr().err
    assert catalog.main(["--write", "--path", str(path)]) == 0
    assert catalog.main(["--check", "--path", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == catalog.render()
