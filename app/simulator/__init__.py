"""A fleet of simulated satellites over HTTP: `groundstation simulate` (docs/operations.md §11).

A pure HTTP client of the server: it imports nothing of the service layers.
"""
