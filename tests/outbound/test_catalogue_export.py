"""How a schema is placed in an exported document: its own references rewritten to point where it now lives."""

from __future__ import annotations

from hookhub.outbound.catalogue_export import rebase

PREFIX = "#/components/schemas/a"


def test_rebase_rewrites_the_schemas_own_pointers_only() -> None:
    schema = {
        "$defs": {"Money": {"type": "integer"}, "Tree": {"properties": {"up": {"$ref": "#"}}}},
        "properties": {
            "amount": {"$ref": "#/$defs/Money"},
            "default": {"$ref": "#/$defs/Money"},  # a property called like a keyword is still a schema
            "kind": {"enum": [{"$ref": "#/$defs/Money"}], "default": {"$ref": "#/x"}},  # data: left alone
            "anchored": {"$ref": "#money"},  # an anchor resolves anywhere in the document
            "remote": {"$id": "urn:x", "$ref": "#/y"},  # its own resource
        },
    }
    assert rebase(schema, PREFIX) == {
        "$defs": {"Money": {"type": "integer"}, "Tree": {"properties": {"up": {"$ref": PREFIX}}}},
        "properties": {
            "amount": {"$ref": f"{PREFIX}/$defs/Money"},
            "default": {"$ref": f"{PREFIX}/$defs/Money"},
            "kind": {"enum": [{"$ref": "#/$defs/Money"}], "default": {"$ref": "#/x"}},
            "anchored": {"$ref": "#money"},
            "remote": {"$id": "urn:x", "$ref": "#/y"},
        },
    }
    with_id = {"$id": "urn:hookhub:a", "$ref": "#/$defs/b", "$defs": {"b": {}}}
    assert rebase(with_id, PREFIX) == with_id
    assert rebase(True, PREFIX) is True
