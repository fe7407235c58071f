"""Model sizes counted before allocation (`dcnrank.models.size`), and the builders' refusal of
a model that cannot fit in memory: one line naming the setting, nothing allocated."""

import resource
import subprocess
import sys

import pytest
import torch

import dcnrank.models.size
from dcnrank.bundle.weights import expected_tensors
from dcnrank.config.model_config import LEVER_FLAGS
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, MultiHotColumn, NumericColumn
from dcnrank.models import DCNConfig, build_dcn
from dcnrank.models.dcn import count_parameters
from dcnrank.models.size import (
    MEMORY_LIMIT_ENV,
    MemoryCheck,
    available_memory,
    check_model_fits,
    dcn_size,
    format_bytes,
    parse_memory_limit,
)
from dcnrank.models.table_inputs import build_table_dcn, table_dcn_size

MOVIELENS_SIZES = [1683, 944, 3, 8, 796, 22]
GIB = 1024**3


@pytest.fixture(autouse=True)
def memory_limit(monkeypatch):
    """Every test sees 16 GiB, whatever the machine has, unless it says otherwise."""
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "16G")


def buffer_bytes(model):
    return sum(buffer.numel() * buffer.element_size() for buffer in model.buffers())


CONFIGS = [
    DCNConfig(embedding_dim=4, deep_units=(8,)),
    DCNConfig(structure="parallel", embedding_dim=3, deep_units=(5, 2), projection_dim=2),
    DCNConfig(structure="cross_only", embedding_dim=2, num_cross_layers=3, cross_type="vector"),
    DCNConfig(structure="deep_only", embedding_dim=2, deep_units=(4, 4, 1)),
    DCNConfig(
        embedding_dim=2, deep_units=(3,), cross_type="mixture", num_experts=3, projection_dim=2, num_cross_layers=2
    ),  # fmt: skip
    DCNConfig(structure="parallel", embedding_dim=2, deep_units=(3,), cross_type="mixture", num_experts=2),
    DCNConfig(
        embedding_dim=2,
        deep_units=(3,),
        use_bias_terms=True,
        clip_output=True,
        user_history=True,
        item_history=True,
    ),  # fmt: skip
    DCNConfig(embedding_dim=3, deep_units=(2,), user_history=True),
    DCNConfig(structure="parallel", embedding_dim=2, deep_units=(3, 2), deep_norm="batch"),
    DCNConfig(structure="deep_only", embedding_dim=2, deep_units=(4, 3), deep_norm="layer"),
    DCNConfig(embedding_dim=2, deep_units=(3,), deep_norm="batch", use_bias_terms=True, embedding_l2=0.1),
]


NETWORKS = [c for c in CONFIGS if not any(getattr(c, flag) for flag in LEVER_FLAGS)]  # what build_dcn builds


@pytest.mark.parametrize("config", NETWORKS, ids=range(len(NETWORKS)))
def test_counts_match_the_built_model(config):
    size = dcn_size(config, vocabulary_sizes=[5, 4, 3])
    model = build_dcn(config, vocabulary_sizes=[5, 4, 3])
    assert size.parameters == count_parameters(model)
    assert size.buffer_bytes == buffer_bytes(model)
    assert size.bytes() == 16 * size.parameters + size.buffer_bytes
    assert size.bytes(training=False) == 4 * size.parameters + size.buffer_bytes


@pytest.mark.parametrize("config", NETWORKS, ids=range(len(NETWORKS)))
def test_counts_match_for_dense_inputs(config):
    assert dcn_size(config, dense_features=3).parameters == count_parameters(build_dcn(config, dense_features=3))


TABLE_SPEC = FeatureSpec(
    (
        NumericColumn("x"),
        CategoricalColumn("c"),
        CategoricalColumn("wide", embedding_dim=3),
        CategoricalColumn("h", hash_buckets=7),
        NumericColumn("z"),
        MultiHotColumn("tags"),
    ),
    label="y",
    task="binary",
)
TABLE_SIZES = {"c": 5, "wide": 4, "h": 8, "tags": 6}


@pytest.mark.parametrize("config", CONFIGS, ids=range(len(CONFIGS)))
def test_table_counts_match_the_built_model(config):
    size = table_dcn_size(config, TABLE_SPEC, TABLE_SIZES)
    model = build_table_dcn(config, TABLE_SPEC, TABLE_SIZES)
    assert size.parameters == count_parameters(model)
    assert size.buffer_bytes == buffer_bytes(model)


def test_table_of_one_width_has_no_position_buffers():
    spec = FeatureSpec((CategoricalColumn("a"), CategoricalColumn("b")), label="y", task="regression")
    model = build_table_dcn(DCNConfig(embedding_dim=2), spec, {"a": 3, "b": 4})
    assert table_dcn_size(DCNConfig(embedding_dim=2), spec, {"a": 3, "b": 4}).buffer_bytes == buffer_bytes(model)


def peak_rss_growth(build):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError) as caught:
        build()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024, str(caught.value)


def test_a_huge_embedding_dim_is_refused_before_allocation():
    grew, message = peak_rss_growth(lambda: build_dcn(DCNConfig(embedding_dim=10_000_000), MOVIELENS_SIZES))
    assert grew < 64 * 1024**2  # nothing like the 13 PB asked for was touched
    assert "\n" not in message
    assert message.startswith("model too large for memory: x0 of width 60,000,000 (model.embedding_dim=10000000 × 6")
    assert "model.embedding_dim=10000000 × 3,456 embedding rows (6 features) needs 515 GiB" in message
    assert message.endswith(f"16 GiB available ({MEMORY_LIMIT_ENV}). Lower those settings, or set "
                            f"{MEMORY_LIMIT_ENV} (e.g. 64G) to allow more")  # fmt: skip


def test_huge_deep_units_are_refused_naming_them():
    grew, message = peak_rss_growth(lambda: build_dcn(DCNConfig(deep_units=(100_000_000,)), MOVIELENS_SIZES))
    assert grew < 64 * 1024**2
    assert message.startswith(
        "model too large for memory: model.deep_units=[100000000] on x0 of width 192 "
        "(model.embedding_dim=32 × 6 features) needs 288 GiB; in all the model needs 289 GiB"
    )


def test_a_huge_hashed_table_is_refused_naming_the_column():
    spec = FeatureSpec(
        (NumericColumn("x"), CategoricalColumn("site", hash_buckets=2_000_000_000, embedding_dim=4096)),
        label="y",
        task="binary",
    )
    grew, message = peak_rss_growth(lambda: build_table_dcn(DCNConfig(), spec, {"site": 2_000_000_001}))
    assert grew < 64 * 1024**2
    assert message.startswith(
        "model too large for memory: columns.site.hash_buckets=2000000000 × columns.site.embedding_dim=4096 "
        "needs 119 TiB; in all"
    )
    assert "Lower that setting" in message


def test_the_refusal_reads_the_available_memory_without_a_limit(monkeypatch):
    monkeypatch.delenv(MEMORY_LIMIT_ENV)
    with pytest.raises(ValueError, match=r"available \((MemAvailable|the cgroup's memory limit|available pages)\)"):
        build_dcn(DCNConfig(embedding_dim=10_000_000), MOVIELENS_SIZES)


def test_a_model_that_fits_is_built(monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "4M")  # the 221,953-parameter seed model needs 3.4 MiB
    assert count_parameters(build_dcn(DCNConfig(), MOVIELENS_SIZES)) == 221_953
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "3M")
    with pytest.raises(ValueError, match=r"needs 3.39 MiB for its weights, gradients and AdamW's two moments on cpu, "
                                         r"3 MiB available"):  # fmt: skip
        build_dcn(DCNConfig(), MOVIELENS_SIZES)
    build_dcn(DCNConfig(), MOVIELENS_SIZES, memory_check=MemoryCheck(training=False))  # 0.85 MiB of weights
    build_dcn(DCNConfig(), MOVIELENS_SIZES, memory_check=None)


def test_meta_builds_are_never_refused():
    huge = DCNConfig(embedding_dim=10_000_000, deep_units=(100_000_000,))
    with torch.device("meta"):
        model = build_dcn(huge, MOVIELENS_SIZES)
    assert model.inputs.weight.shape == (3456, 10_000_000) and model.inputs.weight.is_meta
    spec = FeatureSpec((CategoricalColumn("site", hash_buckets=2_000_000_000),), label="y", task="binary")
    tensors = expected_tensors(DCNConfig(embedding_dim=4096), spec, {"site": 2_000_000_001})
    assert tensors["inputs.embeddings.0.weight"][0] == (2_000_000_001, 4096)
    check_model_fits(dcn_size(huge, MOVIELENS_SIZES), MemoryCheck(device="meta"))


def test_malformed_sizes_keep_the_constructors_messages():
    with pytest.raises(ValueError, match=r"`embedding_dim` must be a positive int. Received: embedding_dim=0"):
        build_dcn(DCNConfig(embedding_dim=0), MOVIELENS_SIZES)
    with pytest.raises(ValueError, match=r"`vocabulary_sizes` must be a non-empty sequence of positive ints"):
        build_dcn(DCNConfig(), [3, -1])
    with pytest.raises(ValueError, match=r"`table_sizes` must give a positive int for exactly the columns"):
        build_table_dcn(DCNConfig(), TABLE_SPEC, {"c": 5})


def test_a_cuda_model_needs_its_weights_in_ram_and_the_rest_on_the_device(monkeypatch):
    monkeypatch.delenv(MEMORY_LIMIT_ENV)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (2 * GIB, 80 * GIB))
    monkeypatch.setattr(dcnrank.models.size, "_meminfo_available", lambda: GIB)
    monkeypatch.setattr(dcnrank.models.size, "_cgroup_free", lambda: None)
    size = dcn_size(DCNConfig(deep_units=(1_000_000,)), MOVIELENS_SIZES)  # 0.72 GiB of weights, 2.89 GiB to train
    check_model_fits(size, MemoryCheck(device="cpu", training=False))
    on_cuda = r"needs 2.89 GiB for its weights, gradients and AdamW's two moments on cuda:0, 2 GiB available"
    with pytest.raises(ValueError, match=on_cuda + r" \(free on cuda:0\)"):
        check_model_fits(size, MemoryCheck(device="cuda:0"))
    with pytest.raises(ValueError, match=r"needs 2.89 GiB .* on cpu, 1 GiB available \(MemAvailable\)"):
        check_model_fits(size, MemoryCheck(device="cpu"))
    bigger = dcn_size(DCNConfig(deep_units=(2_000_000,)), MOVIELENS_SIZES)  # 1.45 GiB of weights
    with pytest.raises(ValueError, match=r"needs 1.45 GiB for its weights on cpu, 1 GiB available"):
        check_model_fits(bigger, MemoryCheck(device="cuda"))
    check_model_fits(size, MemoryCheck(device="cuda", limit=4 * GIB))


def test_memory_limit_values(monkeypatch):
    assert parse_memory_limit("123") == 123 and parse_memory_limit(" 2 g ") == 2 * GIB
    assert parse_memory_limit("1.5T") == int(1.5 * 1024**4) and parse_memory_limit("64MiB") == 64 * 1024**2
    for bad in ("", "lots", "-1G", "0", "8X"):
        with pytest.raises(ValueError, match=rf"`{MEMORY_LIMIT_ENV}` must be a positive number of bytes.*"
                                             rf"Received: {MEMORY_LIMIT_ENV}="):  # fmt: skip
            parse_memory_limit(bad)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "plenty")
    with pytest.raises(ValueError, match=r"Received: DCNRANK_MEMORY_LIMIT='plenty'"):
        build_dcn(DCNConfig(embedding_dim=4), [3])
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1K")
    assert available_memory("cuda:3") == (1024, MEMORY_LIMIT_ENV)


def test_available_memory_reads_linux_figures(monkeypatch, tmp_path):
    monkeypatch.delenv(MEMORY_LIMIT_ENV)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683584 kB\nMemAvailable:    2000000 kB\n")
    assert dcnrank.models.size._meminfo_available(meminfo) == 2_048_000_000
    assert dcnrank.models.size._meminfo_available(tmp_path / "none") is None
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "memory.current").write_text("100\n")
    assert dcnrank.models.size._cgroup_free(tmp_path) is None
    (tmp_path / "memory.max").write_text("1000\n")
    assert dcnrank.models.size._cgroup_free(tmp_path) == 900
    monkeypatch.setattr(dcnrank.models.size, "_meminfo_available", lambda: 5000)
    monkeypatch.setattr(dcnrank.models.size, "_cgroup_free", lambda: 900)
    assert available_memory("cpu") == (900, "the cgroup's memory limit")
    monkeypatch.setattr(dcnrank.models.size, "_cgroup_free", lambda: None)
    monkeypatch.setattr(dcnrank.models.size, "_meminfo_available", lambda: None)
    monkeypatch.setattr(dcnrank.models.size, "_sysconf_available", lambda: 7)
    assert available_memory("cpu") == (7, "available pages")
    assert available_memory("mps") is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert available_memory("cuda") is None
    monkeypatch.setattr(dcnrank.models.size, "_sysconf_available", lambda: 4 * 1024**2)
    check_model_fits(dcn_size(DCNConfig(), MOVIELENS_SIZES), MemoryCheck(device="cuda"))  # 3.4 MiB unchecked on cuda


def test_format_bytes():
    assert [format_bytes(n) for n in (0, 1023, 1024, 10 * 1024**2 + 1, 5 * 1024**5, 3000 * 1024**5)] == [
        "0 B", "1023 B", "1 KiB", "10 MiB", "5 PiB", "3,000 PiB",
    ]  # fmt: skip


@pytest.mark.slow  # a fresh interpreter imports torch and the CLI: ~4 s
def test_the_train_command_refuses_a_huge_model_in_one_line(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("label,x,c\n" + "".join(f"{i % 2},{i / 10},{'abc'[i % 3]}\n" for i in range(20)))
    spec = tmp_path / "s.toml"
    spec.write_text('task = "binary"\nlabel = "label"\n[columns]\nx = "numeric"\nc = "categorical"\n')
    out = tmp_path / "d"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dcnrank",
            "train",
            "--data",
            str(table),
            "--spec",
            str(spec),
            "--out",
            str(out),
            "--quiet",
            "model.embedding_dim=10000000",
            "model.projection_dim=none",
            "model.num_cross_layers=1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip  (full rank, one layer: the recipe's low-rank layers would make the deep network the largest)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "dcnrank train: error: model too large for memory: x0 of width 20,000,000 (2 columns: "
        "model.embedding_dim=10000000) in model.num_cross_layers=1 matrix cross layers needs 5.68 PiB"
    )
    assert not out.exists()


def test_a_shape_check_on_the_meta_device_stays_in_compiled_code():
    """A bundle's shape check builds its model on the meta device; a `cumsum` there ran torch's
    Python reference, whose first call imports sympy (1.8-3.5 s of every train and load)."""
    code = (
        "import sys\n"
        "from dcnrank.bundle.weights import expected_tensors\n"
        "from dcnrank.config.model_config import DCNConfig\n"
        "from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, NumericColumn\n"
        "spec = FeatureSpec((CategoricalColumn('c'), NumericColumn('x')), label='y', task='regression')\n"
        "tensors = expected_tensors(DCNConfig(use_bias_terms=True), spec, {'c': 5})\n"
        "print('output.bias_terms.bias' in tensors, 'inputs.embeddings.0.weight' in tensors, 'sympy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True", "False"], done.stdout + done.stderr
