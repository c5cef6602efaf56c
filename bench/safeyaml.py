"""YAML for files users hand us: safe tags only, and bounded once aliases are expanded.

PyYAML shares one node among all the aliases (*a) of an anchor (&a), so a 1 KB "billion
laughs" document loads in microseconds into a few shared lists; it is whatever walks the
result later (validation, JSON, hashing) that expands it to 10^9 items. Counting the nodes
as if every alias were expanded refuses such a document before anything is built."""

from __future__ import annotations

from typing import Any

import yaml

# A suite file has a few hundred nodes; anchors that reuse an options block stay far below.
MAX_NODES = 100_000
MAX_DEPTH = 50


class YamlTooLarge(ValueError):
    """The document would expand past MAX_NODES, nests past MAX_DEPTH, or is recursive."""


def load_yaml(text: str) -> Any:
    """Parse one YAML document with SafeLoader's types; raises yaml.YAMLError when it is not
    YAML and YamlTooLarge when its expanded size or depth passes the limits."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except RecursionError:  # the composer recurses once per nesting level
        raise YamlTooLarge(f"nested deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


class _BoundedLoader(yaml.SafeLoader):
    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _expanded_size(node, {}, set(), 0)
        return node


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_: set[int], depth: int) -> int:
    """Nodes under `node` with every alias expanded; memoized per node, so a bomb costs time
    linear in its file size to measure."""
    if id(node) in sizes:
        return sizes[id(node)]
    if depth > MAX_DEPTH:
        raise YamlTooLarge(f"nested deeper than {MAX_DEPTH} levels")
    if id(node) in open_:
        raise YamlTooLarge("an alias refers to the collection that contains it")
    size = 1
    if isinstance(node, yaml.SequenceNode | yaml.MappingNode):
        open_.add(id(node))
        children = node.value if isinstance(node, yaml.SequenceNode) else _flat(node.value)
        for child in children:
            size += _expanded_size(child, sizes, open_, depth + 1)
            if size > MAX_NODES:
                raise YamlTooLarge(f"more than {MAX_NODES} values once aliases are expanded")
        open_.discard(id(node))
    sizes[id(node)] = size
    return size


def _flat(pairs: list[tuple[yaml.Node, yaml.Node]]) -> list[yaml.Node]:
    return [n for pair in pairs for n in pair]
