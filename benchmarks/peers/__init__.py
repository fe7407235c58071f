"""`make bench-peers`: the same DCN-V2 trained in dcnrank and four peer libraries on one table.

Scripts, not an importable package: `bench_peers.py` is the driver, each `run_*.py` a runner
that imports `common.py` from its own folder in its library's virtual environment.
"""
