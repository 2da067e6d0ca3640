"""Throughput benchmarks (design.md §7). Never run in CI; see benchmarks/README.md."""
