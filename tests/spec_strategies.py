"""Hypothesis strategies that draw JSON documents from a JSON Schema (the subset pydantic v2
writes: $ref, anyOf/oneOf, const/enum, typed scalars with bounds, arrays, objects), so that
request bodies of every kind can be generated from the contract itself. Arrays are kept short:
the documents are validated, never computed."""

from typing import Any

from hypothesis import strategies as st

ARRAY_MAX = 4
STRING = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.0123456789[]*", max_size=12)


def documents(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Documents shaped by `schema` (its $defs resolved lazily, so recursion is allowed)."""
    return _strategy(schema, schema.get("$defs", {}))


def _strategy(node: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        return st.deferred(lambda: _strategy(defs[name], defs))
    for key in ("anyOf", "oneOf"):
        if key in node:
            return st.one_of([_strategy(option, defs) for option in node[key]])
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        return _object(node, defs)
    if kind == "array":
        return _array(node, defs)
    if kind in ("number", "integer"):
        return _number(node, integer=kind == "integer")
    return {
        "boolean": st.booleans(),
        "null": st.none(),
        "string": STRING,
    }.get(kind, st.none())


def _object(node: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties = node.get("properties", {})
    tags = {name for name, sub in properties.items() if "const" in sub}  # discriminated unions need them
    required = set(node.get("required", ())) | tags
    if not properties:  # a mapping: str -> values
        values = node.get("additionalProperties")
        values = values if isinstance(values, dict) else {}
        return st.dictionaries(STRING, _strategy(values, defs), max_size=ARRAY_MAX)
    fields = {name: _strategy(sub, defs) for name, sub in properties.items()}
    return st.fixed_dictionaries(
        {name: fields[name] for name in properties if name in required},
        optional={name: fields[name] for name in properties if name not in required},
    )


def _array(node: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[list[Any]]:
    low = node.get("minItems", 0)
    high = min(node.get("maxItems", ARRAY_MAX), max(low, ARRAY_MAX))
    return st.lists(_strategy(node.get("items", {}), defs), min_size=low, max_size=high)


def _number(node: dict[str, Any], integer: bool) -> st.SearchStrategy[float | int]:
    low, high = node.get("minimum"), node.get("maximum")
    open_low, open_high = node.get("exclusiveMinimum"), node.get("exclusiveMaximum")
    if integer:
        low = low if open_low is None else open_low + 1
        high = high if open_high is None else open_high - 1
        return st.integers(min_value=low, max_value=high)
    return st.floats(
        min_value=low if open_low is None else open_low,
        max_value=high if open_high is None else open_high,
        exclude_min=open_low is not None,
        exclude_max=open_high is not None,
        allow_nan=False,
        allow_infinity=False,
    )
