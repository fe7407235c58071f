"""Print the message dcnrank gives for each kind of bad feature spec or data.

Every problem is made on purpose in a temporary folder (specs as TOML, tables as CSV),
then read the way `dcnrank train --data --spec` reads them. docs/own_data.md quotes
this output; tests/test_cli_table.py runs the script so that the quotes stay true.

    python examples/show_errors.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dcnrank.config import load_config  # noqa: E402
from dcnrank.data.encoding.table_encoder import TableEncoder  # noqa: E402
from dcnrank.data.sources.table_readers import read_table  # noqa: E402
from dcnrank.data.spec.feature_spec import load_feature_spec  # noqa: E402
from dcnrank.workflows.train import check_table_config  # noqa: E402

BAD_SPEC = """\
task = "classification"
lable = "label"
[columns]
I1 = { type = "numeric", log = true }
C1 = "categorial"
C2 = { type = "categorical", min_count = 0 }
C3 = { type = "categorical", hash_buckets = "many" }
"""

GOOD_SPEC = """\
task = "binary"
label = "label"
[columns]
I1 = { type = "numeric", log1p = true }
C1 = "categorical"
tags = { type = "multi_hot", separator = "|" }
"""

GOOD_ROWS = "label,I1,C1,tags\n1,3,a,x|y\n0,0,b,\n0,7,a,y\n"

# kind -> (CSV text, what happens to it)
BAD_TABLES = {
    "a spec column missing from the data": "label,I_1,C1,tags\n1,3,a,x\n",
    "text in a numeric column": "label,I1,C1,tags\n1,3,a,x\n0,lots,b,y\n1,-,a,x\n",
    "log1p of a value <= -1": "label,I1,C1,tags\n1,3,a,x\n0,-1,b,y\n",
    "a binary label that is not 0 or 1": "label,I1,C1,tags\n1,3,a,x\n2,4,b,y\n0,5,b,y\n-1,1,a,x\n",
    "a missing label": "label,I1,C1,tags\n1,3,a,x\n,4,b,y\n",
    "a line with the wrong number of cells": "label,I1,C1,tags\n1,3,a,x\n0,4,b\n",
}


def show(kind: str, action) -> None:  # noqa: ANN001 - a zero-argument callable
    try:
        action()
    except (ValueError, FileNotFoundError) as error:
        print(f"## {kind}\n{type(error).__name__}: {error}\n")
    else:
        raise SystemExit(f"expected an error for: {kind}")


def main() -> int:
    os.chdir(tempfile.mkdtemp(prefix="dcnrank-errors-"))  # so that messages name files as data.csv
    folder = Path()
    (folder / "bad_spec.toml").write_text(BAD_SPEC)
    (folder / "spec.toml").write_text(GOOD_SPEC)
    show("a bad spec: every problem at once", lambda: load_feature_spec(folder / "bad_spec.toml"))
    spec = load_feature_spec(folder / "spec.toml")
    (folder / "train.csv").write_text(GOOD_ROWS)
    encoder = TableEncoder.fit(spec, read_table(folder / "train.csv"), source="train.csv")
    for kind, text in BAD_TABLES.items():
        path = folder / "data.csv"
        path.write_text(text)
        show(kind, lambda path=path: encoder.encode(read_table(path), source=str(path)))
    show(
        "a categorical column of fractions (a Parquet or DataFrame float column)",
        lambda: encoder.encode({"label": [1, 0], "I1": [1.0, 2.0], "C1": [3.0, 2.5], "tags": ["x", "y"]}),
    )
    show(
        "a multi_hot column of numbers",
        lambda: encoder.encode({"label": [1], "I1": [1.0], "C1": ["a"], "tags": [4.5]}),
    )
    show(
        "a dataset-only setting in a --data run",
        lambda: check_table_config(load_config(overrides=["data.split=u1"])),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
