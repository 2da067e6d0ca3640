"""Throughput benchmarks (docs/architecture.md §7). Never run in CI; see benchmarks/README.md."""
