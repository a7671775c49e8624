"""Hypothesis strategies and helpers shared by the malformed-input tests."""
from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

# any JSON-like value, including the awkward ones (NaN, inf, empty containers, odd keys)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=4),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3), max_leaves=6)


@st.composite
def mutated_json(draw: Any, base: Any, max_depth: int = 5) -> Any:
    """base (deep-copied) with 1-3 random deletions or replacements, each at a random path up to
    max_depth levels down; at depth 0 the whole document is replaced."""
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        node, parent, key = data, None, None
        for _ in range(draw(st.integers(0, max_depth))):
            if isinstance(node, dict) and node:
                k = draw(st.sampled_from(sorted(node, key=str)))
            elif isinstance(node, list) and node:
                k = draw(st.integers(0, len(node) - 1))
            else:
                break
            parent, key, node = node, k, node[k]
        if parent is None:
            data = draw(json_values)
        elif draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(json_values)
    return data


def json_paths(v: Any, prefix: tuple = (), list_limit: int | None = None) -> Iterator[tuple]:
    """Every path (a tuple of keys and indices) in a JSON value, the root () first; only the
    first list_limit items of each list when given (large documents stay cheap to walk)."""
    yield prefix
    if isinstance(v, dict):
        for k, x in v.items():
            yield from json_paths(x, prefix + (k,), list_limit)
    elif isinstance(v, list):
        for i, x in enumerate(v[:list_limit]):
            yield from json_paths(x, prefix + (i,), list_limit)
