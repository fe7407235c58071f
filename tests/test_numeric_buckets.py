"""`model.numeric_buckets`: each numeric block adds the embedding of its value's quantile bucket."""

from __future__ import annotations

import pytest
import torch
from bundle_support import QUICK_TRAIN, SPEC, TABLE
from torch.testing import assert_close

from dcnrank.bundle import load
from dcnrank.config import ConfigError, load_config
from dcnrank.config.model_config import MAX_NUMERIC_BUCKETS
from dcnrank.data.encoding.table_batch import TableBatch
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, NumericColumn
from dcnrank.models import DCNConfig
from dcnrank.models.table_inputs import TableInputs, build_table_dcn, table_dcn_size
from dcnrank.workflows import train_table

TWO_NUMERIC = FeatureSpec((NumericColumn("x"), NumericColumn("z")), label="y", task="binary")


def test_the_block_adds_the_embedding_of_the_values_bucket_and_none_when_missing():
    inputs = TableInputs(TWO_NUMERIC, {}, embedding_dim=3, numeric_buckets=3)
    with torch.no_grad():
        inputs.numeric_edges.copy_(torch.tensor([[0.0, 1.0], [-1.0, 5.0]]))
    plain = TableInputs(TWO_NUMERIC, {}, embedding_dim=3)
    plain.load_state_dict({k: v for k, v in inputs.state_dict().items() if k in plain.state_dict()})
    numeric = torch.tensor([[-0.5, 0.0], [0.5, 7.0], [2.0, 0.0]])
    missing = torch.tensor([[False, False], [False, False], [False, True]])
    batch = TableBatch(torch.zeros(3, 0, dtype=torch.long), numeric, missing)
    added = (inputs(batch) - plain(batch)).view(3, 2, 3)
    table = inputs.bucket_embedding.detach()
    assert_close(added[0, 0], table[0, 0])  # −0.5 < 0: bucket 0
    assert_close(added[1, 0], table[0, 1])  # 0 < 0.5 ≤ 1: bucket 1
    assert_close(added[2, 0], table[0, 2])  # 2 > 1: bucket 2
    assert_close(added[0, 1], table[1, 1])  # −1 < 0 ≤ 5
    assert_close(added[1, 1], table[1, 2])  # 7 > 5
    assert_close(added[2, 1], torch.zeros(3))  # missing: nothing added


def test_the_edges_are_the_quantiles_of_the_present_fit_values():
    inputs = TableInputs(TWO_NUMERIC, {}, embedding_dim=2, numeric_buckets=4)
    before = inputs.numeric_edges.clone()
    values = torch.stack([torch.arange(8.0), torch.full((8,), 3.0)], dim=1)
    missing = torch.zeros(8, 2, dtype=torch.bool)
    missing[4:, 0] = True  # column x: only 0, 1, 2, 3 present
    missing[:, 1] = True  # column z: none present, keeps its edges
    inputs.fit_numeric_buckets(values, missing)
    assert inputs.numeric_edges[0].tolist() == [0.75, 1.5, 2.25]
    assert torch.equal(inputs.numeric_edges[1], before[1])
    assert_close(before[1], torch.tensor([-0.6745, 0.0, 0.6745]), atol=1e-4, rtol=0)  # normal quartiles


def test_the_largest_bucket_count_builds_its_default_edges_at_once():
    inputs = TableInputs(TWO_NUMERIC, {}, embedding_dim=1, numeric_buckets=MAX_NUMERIC_BUCKETS)
    edges = inputs.numeric_edges
    assert edges.shape == (2, MAX_NUMERIC_BUCKETS - 1)
    assert bool((edges[:, 1:] > edges[:, :-1]).all())  # sorted, distinct
    assert_close(edges[:, MAX_NUMERIC_BUCKETS // 2 - 1], torch.zeros(2))  # the median


def test_the_size_counts_the_bucket_tables():
    spec = FeatureSpec((NumericColumn("x"), NumericColumn("z"), CategoricalColumn("c")), label="y", task="binary")
    config = DCNConfig(numeric_buckets=8)
    model = build_table_dcn(config, spec, {"c": 5})
    assert table_dcn_size(config, spec, {"c": 5}).parameters == sum(p.numel() for p in model.parameters())
    plain = build_table_dcn(DCNConfig(), spec, {"c": 5})
    assert sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in plain.parameters()) == 2 * 8 * 32


@pytest.mark.parametrize("value", [1, -2, 2.5, True, MAX_NUMERIC_BUCKETS + 1, 2**31])
def test_a_bucket_count_that_is_not_0_or_from_2_to_the_cap_is_refused(value):
    """Refused at once: a bundle's config claiming 2**31 buckets once made loading spend
    minutes and gigabytes on the default edges before the size check."""
    with pytest.raises(ValueError, match="numeric_buckets"):
        DCNConfig(numeric_buckets=value)
    with pytest.raises(ConfigError, match="model.numeric_buckets"):
        load_config(None, [f"model.numeric_buckets={str(value).lower()}"])


def test_training_fits_the_edges_on_the_fit_rows_and_the_bundle_keeps_them(tmp_path):
    config = load_config(None, [*QUICK_TRAIN, "model.numeric_buckets=4"])
    result = train_table(config, SPEC, TABLE, tmp_path / "bundle")
    bundle = load(result.bundle_path)
    edges = bundle.model.inputs.numeric_edges
    normal = TableInputs(SPEC, bundle.encoder.table_sizes, 2, numeric_buckets=4).numeric_edges
    assert edges.shape == (2, 3) and not torch.equal(edges, normal)  # fitted, and saved with the weights
    fit_rows = torch.arange(len(TABLE["age"]))[: result.metrics["data"]["n_fit"]]  # `last` holds out the end
    encoded = bundle.encoder.encode(TABLE).features
    ages = encoded.numeric[fit_rows, 0][~encoded.missing[fit_rows, 0]].double()
    assert_close(edges[0].double(), torch.quantile(ages, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)))
    again = load(result.bundle_path)
    assert_close(again.predict(TABLE), bundle.predict(TABLE), rtol=0, atol=0)


def test_a_bucketed_bundle_exports_to_onnx_with_the_same_scores(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from dcnrank.export import export_onnx
    from dcnrank.export.onnx_export import onnx_inputs

    config = load_config(None, [*QUICK_TRAIN, "model.numeric_buckets=4"])
    bundle = load(train_table(config, SPEC, TABLE, tmp_path / "bundle").bundle_path)
    path = export_onnx(bundle, tmp_path / "b.onnx")
    features = bundle.encode(TABLE).features
    tensors = {"categorical": features.categorical, "numeric": features.numeric, "missing": features.missing}
    tensors.update({f"multi_hot_{j}": t for j, t in enumerate(features.multi_hot)})
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (found,) = session.run(["score"], {name: tensors[name].numpy() for name in onnx_inputs(bundle)})
    assert_close(torch.from_numpy(found), bundle.predict(TABLE), rtol=1e-5, atol=1e-6)
