"""Throughput benchmarks behind `reconrl bench NAME`: one module per NAME, each with
`add_arguments(parser)` and `run(args) -> dict` (the JSON-able results)."""
