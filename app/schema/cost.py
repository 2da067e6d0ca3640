"""The GraphQL cost guard: bounds a document before any standard validation rule runs.

Every fragment is measured once (memoised), so a document costs time linear in its
size, however its fragments spread one another; the numbers themselves are the
*expanded* ones (what execution would do), so a fragment bomb is refused by its
arithmetic, never by expanding it. Measured per document:

- depth: nesting of fields (introspection fields `__…` are not counted, as
  GraphiQL's schema query is deep by nature);
- aliases and fields after fragment expansion;
- comparisons: the standard overlapping-fields rule compares every two
  occurrences of one response name in a selection set (fragments spread into it
  included), field by field down their sub-selections, so a flood of `me{id}`
  costs quadratic time. Two occurrences whose expanded sizes are a and b cost at
  most a·b comparisons, so Σ a·b over the pairs of each name, summed over every
  selection set of the document, bounds the rule's work.

The limits are listed in docs/graphql.md ("Limits").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)


@dataclass(frozen=True, slots=True)
class CostLimits:
    max_depth: int = 10
    max_aliases: int = 30
    max_fields: int = 1000
    # Measured: the slowest document within this bound validates in ~40 ms here
    # (graphql-core's pair checks cost 5-25 µs each).
    max_comparisons: int = 5_000


class CostExceeded(Exception):
    """A document over one of the limits (reported as a VALIDATION error)."""


@dataclass(slots=True)
class _Cost:
    depth: int = 0
    aliases: int = 0
    fields: int = 0
    # response name → [occurrences, Σ expanded size, Σ size²] at the top of this
    # selection set (fragments flattened)
    names: dict[str, list[int]] = field(default_factory=dict)


class _Measure:
    def __init__(self, document: DocumentNode, limits: CostLimits) -> None:
        self._limits = limits
        self._fragments: dict[str, FragmentDefinitionNode] = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        self._measured: dict[str, _Cost] = {}
        self._measuring: set[str] = set()
        self._comparisons = 0

    def fragment(self, name: str) -> _Cost | None:
        """The memoised cost of a fragment; None when it does not exist (validation says so)."""
        known = self._measured.get(name)
        if known is not None:
            return known
        definition = self._fragments.get(name)
        if definition is None:
            return None
        if name in self._measuring:
            raise CostExceeded(f"Fragment '{name}' spreads itself")
        self._measuring.add(name)
        cost = self.selection_set(definition.selection_set)
        self._measuring.discard(name)
        self._measured[name] = cost
        return cost

    def selection_set(self, selection_set: SelectionSetNode) -> _Cost:
        total = _Cost()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self._add_field(total, selection)
            elif isinstance(selection, InlineFragmentNode):
                self._merge(total, self.selection_set(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                spread = self.fragment(selection.name.value)
                if spread is not None:
                    self._merge(total, spread)
        self._count_comparisons(total)
        return total

    def _count_comparisons(self, cost: _Cost) -> None:
        """Bound the overlap rule's work on this selection set (each AST set is measured once)."""
        for occurrences, size, squares in cost.names.values():
            if occurrences > 1:
                self._comparisons += (size * size - squares) // 2  # Σ a·b over the pairs
        if self._comparisons > self._limits.max_comparisons:
            raise CostExceeded(
                "Query selects the same fields too many times to be checked "
                f"(more than {self._limits.max_comparisons} field comparisons)")

    def _add_field(self, total: _Cost, node: FieldNode) -> None:
        total.fields += 1
        if node.alias is not None:
            total.aliases += 1
        size = 1
        if node.selection_set is not None:
            child = self.selection_set(node.selection_set)
            size += child.fields
            total.fields += child.fields
            total.aliases += child.aliases
            if not node.name.value.startswith("__"):
                total.depth = max(total.depth, child.depth + 1)
        self._add_name(total, (node.alias or node.name).value, 1, size, size * size)
        self._check_size(total)

    def _merge(self, total: _Cost, part: _Cost) -> None:
        total.fields += part.fields
        total.aliases += part.aliases
        total.depth = max(total.depth, part.depth)
        self._check_size(total)  # before merging the names, so that work stays bounded
        for name, (occurrences, size, squares) in part.names.items():
            self._add_name(total, name, occurrences, size, squares)

    @staticmethod
    def _add_name(total: _Cost, name: str, occurrences: int, size: int, squares: int) -> None:
        entry = total.names.get(name)
        if entry is None:
            total.names[name] = [occurrences, size, squares]
        else:
            entry[0] += occurrences
            entry[1] += size
            entry[2] += squares

    def _check_size(self, cost: _Cost) -> None:
        limits = self._limits
        if cost.fields > limits.max_fields:
            raise CostExceeded(
                f"Query selects more than {limits.max_fields} fields (fragments expanded)")
        if cost.aliases > limits.max_aliases:
            raise CostExceeded(f"Query uses more than {limits.max_aliases} aliases")


def check_cost(document: DocumentNode, limits: CostLimits) -> list[GraphQLError]:
    """The cost errors of `document` (empty when it is within `limits`).

    Every operation and every fragment definition is measured: the standard rules
    validate unused fragments too.
    """
    measure = _Measure(document, limits)
    try:
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                # Depth is a property of what runs: checked per operation only (a
                # fragment may sit under an introspection field, where depth is free).
                depth = measure.selection_set(definition.selection_set).depth
                if depth > limits.max_depth:
                    raise CostExceeded(f"Query is nested deeper than {limits.max_depth} levels")
            elif isinstance(definition, FragmentDefinitionNode):
                measure.fragment(definition.name.value)
    except CostExceeded as exceeded:
        return [GraphQLError(str(exceeded), extensions={"code": "VALIDATION",
                                                        "reason": "query_too_complex"})]
    return []


__all__ = ["CostExceeded", "CostLimits", "check_cost"]
