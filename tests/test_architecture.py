"""The layering holds: no import cycles anywhere in `app/`, and only the app factory and
the CLI import the composition root (the contracts in `.importlinter` check the rest)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grimp

ROOT_IMPORTERS = ("app.main", "app.cli")


def import_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every group of modules that import each other, directly or through others
    (strongly connected components with more than one module, or a self-import)."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        # iterative Tarjan: (node, iterator over its imports)
        work: list[tuple[str, list[str]]] = []
        index[start] = lowlink[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        work.append((start, sorted(graph.get(start, ()))))
        while work:
            node, pending = work[-1]
            if pending:
                target = pending.pop()
                if target not in index:
                    index[target] = lowlink[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, sorted(graph.get(target, ()))))
                elif target in on_stack:
                    lowlink[node] = min(lowlink[node], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                lowlink[parent] = min(lowlink[parent], lowlink[node])
            if lowlink[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    cycles.append(sorted(component))
    return cycles


def app_graph() -> dict[str, set[str]]:
    graph = grimp.build_graph("app", include_external_packages=False)
    return {module: set(graph.find_modules_directly_imported_by(module))
            for module in graph.modules}


def test_no_module_in_app_takes_part_in_an_import_cycle() -> None:
    assert import_cycles(app_graph()) == []


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = app_graph()
    graph["app.services.common.clock"].add("app.services.fleet.state")  # state imports clock
    cycles = import_cycles(graph)
    assert any({"app.services.common.clock", "app.services.fleet.state"} <= set(c)
               for c in cycles)


def test_only_the_app_factory_and_the_cli_import_the_composition_root() -> None:
    importers = {module for module, imported in app_graph().items() if "app.runtime" in imported}
    assert importers
    assert all(module.startswith(ROOT_IMPORTERS) for module in importers), sorted(importers)

