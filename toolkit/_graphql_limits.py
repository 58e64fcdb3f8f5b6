"""The GraphQL view's depth and alias limits, as validation rules linear in the document.

strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` walk every path through the fragment
spreads, so a document of a few hundred bytes (``fragment F1 on Query { ...F2 ...F2 }``, twenty
levels of it) takes them seconds, then hours, of the event loop before any limit is checked. Here
each fragment is measured once and remembered: the cost is the document's size, whatever the
spreads multiply. The counts are those of the operation as executed (a fragment spread twice
counts its aliases twice), and the messages and the depth convention (top-level fields at depth
0) are strawberry's. Introspection fields (``__schema``, ``__type``) and what is under them do not
count toward the depth (whether introspection is allowed at all is another rule's), but the
aliases under them do: aliased introspection fields multiply its work as any others do.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)

__all__ = ["document_limits"]

Measure = tuple[int, int]  # (levels of fields, aliases)


class _Measurer:
    """Levels and aliases of selection sets, each fragment measured once."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.memo: dict[str, Measure] = {}
        self.active: set[str] = set()  # fragments being measured (a cycle: another rule refuses it)

    def selection_set(self, node: SelectionSetNode) -> Measure:
        levels = aliases = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                if selection.alias is not None:
                    aliases += 1
                below, below_aliases = (
                    self.selection_set(selection.selection_set) if selection.selection_set else (0, 0)
                )
                aliases += below_aliases  # introspection's aliases count too
                if not selection.name.value.startswith("__"):  # introspection: not in the depth
                    levels = max(levels, 1 + below)
            elif isinstance(selection, InlineFragmentNode):
                below, below_aliases = self.selection_set(selection.selection_set)
                levels, aliases = max(levels, below), aliases + below_aliases
            elif isinstance(selection, FragmentSpreadNode):
                below, below_aliases = self.fragment(selection.name.value)
                levels, aliases = max(levels, below), aliases + below_aliases
        return levels, aliases

    def fragment(self, name: str) -> Measure:
        known = self.memo.get(name)
        if known is not None:
            return known
        definition = self.fragments.get(name)
        if definition is None or name in self.active:
            return 0, 0  # unknown, or a cycle: refused by graphql's own rules
        self.active.add(name)
        try:
            measure = self.selection_set(definition.selection_set)
        finally:
            self.active.discard(name)
        self.memo[name] = measure
        return measure


def document_limits(max_depth: int | None, max_aliases: int | None) -> tuple[type[ValidationRule], ...]:
    """The validation rule enforcing ``max_depth`` and ``max_aliases`` (``None``: no limit), or none."""
    if max_depth is None and max_aliases is None:
        return ()

    class DocumentLimits(ValidationRule):
        def enter_document(self, node: DocumentNode, *_args: Any) -> None:
            fragments = {
                definition.name.value: definition
                for definition in node.definitions
                if isinstance(definition, FragmentDefinitionNode)
            }
            measurer = _Measurer(fragments)
            for definition in node.definitions:
                if not isinstance(definition, OperationDefinitionNode):
                    continue
                name = definition.name.value if definition.name else "anonymous"
                try:
                    levels, aliases = measurer.selection_set(definition.selection_set)
                except RecursionError:  # only with the token limit lifted: refused as too deep
                    levels, aliases = (max_depth or 0) + 2, 0
                if max_depth is not None and levels - 1 > max_depth:
                    self.report_error(
                        GraphQLError(f"'{name}' exceeds maximum operation depth of {max_depth}", definition)
                    )
                if max_aliases is not None and aliases > max_aliases:
                    message = f"{aliases} aliases found. Allowed: {max_aliases}"
                    self.report_error(GraphQLError(message, definition))

    return (DocumentLimits,)
