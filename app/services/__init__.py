"""Every rule of Groundstation, grouped by domain (see docs/architecture.md §2).

Transports (REST handlers, GraphQL resolvers, the CLI) call these functions and
hold no rules of their own. Each domain package says in its docstring what it
owns and which other domains it may use; `lint-imports` checks that.
"""
