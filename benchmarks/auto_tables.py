"""`dcnrank train --auto` on the quality tables: what it chose on the validation rows, at what
cost, and the chosen bundle's test score beside the defaults' (`docs/recipe.md`).

    DCNRANK_DATA=/path/holding/ml-100k python benchmarks/auto_tables.py --tables threshold-clicks criteo-like
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_tables import TABLES, make_table  # noqa: E402

from dcnrank.bundle import load  # noqa: E402
from dcnrank.cli.train import run_config  # noqa: E402
from dcnrank.workflows.auto import auto_metric, auto_train  # noqa: E402
from dcnrank.workflows.evaluate import evaluate_table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", nargs="+", choices=TABLES, default=["threshold-clicks", "criteo-like"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = run_config(None, [f"data.seed={args.seed}", f"train.seed={args.seed}"])  # the defaults of `dcnrank train`
    for name in args.tables:
        table = make_table(name, args.seed)
        with tempfile.TemporaryDirectory(prefix="dcnrank-auto-") as folder:
            result = auto_train(config, table.spec, table.train, Path(folder) / "bundle", dataset={"table": name})
            test = evaluate_table(load(result.bundle_path), table.test, source=f"{name} test rows")
        auto = result.metrics["auto"]
        metric = auto_metric(table.spec.task)[0]
        print(f"{name} (seed {args.seed}): validation {metric} per candidate, chosen marked *")
        for candidate, scores in auto["candidates"].items():
            mark = "*" if candidate == auto["chosen"] else " "
            print(f"  {mark} {candidate:<16} {scores[f'val_{metric}']:.4f}  best epoch {scores['best_epoch']}"
                  f"  {scores['seconds']:.0f} s")  # fmt: skip
        print(f"  chosen {auto['chosen']!r}: test {metric} {test[metric]:.4f}; the search took {auto['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
