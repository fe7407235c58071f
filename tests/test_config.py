"""Run configs: TOML sections, key=value overrides, every error collected, round trips."""

from pathlib import Path

import pytest

from dcnrank.config import ConfigError, DataConfig, TrainRunConfig, load_config, parse_override
from dcnrank.models import DCNConfig
from dcnrank.training import TrainConfig

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text, name="run.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_the_seeds_stacked_dcn():
    config = load_config()
    assert config == TrainRunConfig()
    assert config.model == DCNConfig(structure="stacked", embedding_dim=32, deep_units=(192, 192))
    assert config.train == TrainConfig(learning_rate=0.01, epochs=10, batch_size=1024)
    assert config.data == DataConfig(split=None, seed=0, validation_fraction=0.1, patience=2)


def test_toml_sections_then_overrides_win(tmp_path):
    path = write(
        tmp_path,
        "[model]\nprojection_dim = 20\ndeep_units = [64, 32]\n"
        "[train]\nepochs = 3\nlearning_rate = 1\n"
        '[data]\nsplit = "u1"\n',
    )
    config = load_config(path, ["train.epochs=5", "model.deep_units=[256,128]", "data.data_dir=/data/ml 100k"])
    assert config.model.projection_dim == 20
    assert config.model.deep_units == (256, 128)  # the override beat the file
    assert config.train.epochs == 5
    assert config.train.learning_rate == 1.0 and isinstance(config.train.learning_rate, float)
    assert config.data.split == "u1"
    assert config.data.data_dir == "/data/ml 100k"  # a bare word is a string


def test_later_override_wins_and_none_unsets():
    config = load_config(overrides=["model.projection_dim=20", "model.projection_dim=none", "train.shuffle=true"])
    assert config.model.projection_dim is None
    assert config.train.shuffle is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("train.epochs=5", ("train.epochs", 5)),
        ("train.learning_rate=1e-3", ("train.learning_rate", 0.001)),
        ("model.deep_units=[256, 128]", ("model.deep_units", [256, 128])),
        ('data.split="u1"', ("data.split", "u1")),
        ("data.split=u1", ("data.split", "u1")),
        ("data.data_dir=/a=b", ("data.data_dir", "/a=b")),
        (" train.shuffle = false ", ("train.shuffle", False)),
    ],
)
def test_parse_override(text, expected):
    assert parse_override(text) == expected


def test_parse_override_needs_key_and_equals():
    with pytest.raises(ConfigError, match=r"override 'epochs' must look like section\.field=value"):
        parse_override("epochs")
    with pytest.raises(ConfigError, match=r"override '=3' must look like"):
        parse_override("=3")


def test_unknown_key_suggests_the_closest():
    with pytest.raises(ConfigError) as info:
        load_config(overrides=["train.learning_rat=0.1"])
    assert info.value.errors == [
        "unknown key 'train.learning_rat' (did you mean 'train.learning_rate'?) (override 'train.learning_rat=0.1')"
    ]


def test_every_error_is_collected(tmp_path):
    path = write(tmp_path, "[trian]\nepochs = 3\n[model]\nembedding_dim = 0\n", name="bad.toml")
    with pytest.raises(ConfigError) as info:
        load_config(
            path,
            [
                "epochs=3",
                "x",
                "train.epochs=five",
                "model.deep_units=[a]",
                "model.dropout=1",
                "data.split=u9",
                "data.validation_fraction=0",
                "data.patience=0",
                "data.max_train_rows=1",
                "train.batch_size=true",
            ],
        )
    errors = info.value.errors
    expected = [
        "override 'x' must look like section.field=value",
        "unknown key 'trian.epochs' (did you mean 'train.epochs'?) (from bad.toml)",
        "unknown key 'epochs' (did you mean 'train.epochs'?) (override 'epochs=3')",
        "model.embedding_dim: must be ≥ 1. Received: 0 (from bad.toml)",
        "model.deep_units: must be a list of ints. Received: '[a]'",  # not TOML: a bare string
        "model.dropout: must be in [0, 1). Received: 1",
        "train.epochs: must be an int. Received: 'five'",
        "train.batch_size: must be an int. Received: True",
        "data.split: must be one of random, leaky, u1",
        "data.validation_fraction: must be in (0, 1). Received: 0",
        "data.patience: must be ≥ 1. Received: 0",
        "data.max_train_rows: must be ≥ 2",
    ]
    assert len(errors) == len(expected), errors
    for fragment in expected:
        assert any(fragment in error for error in errors), fragment
    assert str(info.value).startswith(f"invalid configuration ({len(expected)} errors):\n  - ")


def test_cross_field_error_from_the_section():
    with pytest.raises(ConfigError, match=r"model: `deep_units` must not be empty for structure='stacked'"):
        load_config(overrides=["model.deep_units=[]"])


def test_wrong_types_name_the_type():
    with pytest.raises(ConfigError, match=r"model\.projection_dim: must be an int or none\. Received: '3'"):
        load_config(overrides=['model.projection_dim="3"'])
    with pytest.raises(ConfigError, match=r"train\.shuffle: must be true or false\. Received: 1"):
        load_config(overrides=["train.shuffle=1"])
    with pytest.raises(ConfigError, match=r"data\.data_dir: must be a string or none\. Received: 3"):
        load_config(overrides=["data.data_dir=3"])
    with pytest.raises(ConfigError, match=r"train\.precision: must be one of fp32, bf16\. Received: 'fp16'"):
        load_config(overrides=["train.precision=fp16"])


def test_section_that_is_not_a_table(tmp_path):
    path = write(tmp_path, 'model = "big"\n')
    with pytest.raises(ConfigError, match=r"model: must be a table of fields\. Received: 'big'"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"a configuration must be a table of sections"):
        TrainRunConfig.from_dict(["model"])


def test_bad_toml_names_file_and_line(tmp_path):
    path = write(tmp_path, "[model]\nembedding_dim = = 3\n", name="broken.toml")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML: .*line 2"):
        load_config(path)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"binary\.toml: not valid TOML"):
        load_config(binary)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config file not found\. Received: path='.*nope\.toml'"):
        load_config(tmp_path / "nope.toml")


def test_data_config_checks_itself():
    with pytest.raises(ConfigError, match=r"data\.split: must be one of .* Received: 'x'") as info:
        DataConfig(split="x", patience=0)
    assert len(info.value.errors) == 2


def test_toml_round_trip(tmp_path):
    config = load_config(
        overrides=[
            "model.projection_dim=20",
            "model.diag_scale=0.5",
            "train.epsilon=1e-7",
            "train.shuffle=true",
            'data.data_dir="C:\\\\data \\"x\\""',
            "data.max_train_rows=4096",
        ]
    )
    assert config.data.data_dir == 'C:\\data "x"'
    path = write(tmp_path, config.to_toml())
    assert load_config(path) == config
    assert load_config(write(tmp_path, TrainRunConfig().to_toml(), "d.toml")) == TrainRunConfig()


def test_dict_round_trip():
    config = load_config(overrides=["model.structure=parallel", "data.split=temporal"])
    assert TrainRunConfig.from_dict(config.to_dict()) == config


def test_shipped_seed_config_is_the_default():
    # the seed's stacked DCN on the disjoint random split (the config's own data key)
    assert load_config(REPO / "configs" / "seed_dcn.toml") == TrainRunConfig(data=DataConfig(split="random"))


def test_dataset_only_keys_are_refused_when_set():
    from dcnrank.config.data_config import DATASET_ONLY_KEYS, refuse_changed

    assert DATASET_ONLY_KEYS == ("split", "data_dir")
    assert DataConfig().split is None  # the release's default split
    refuse_changed(load_config(overrides=["data.seed=3"]).data, DATASET_ONLY_KEYS, "applies to --dataset runs")
    config = load_config(overrides=["data.split=u2", 'data.data_dir="/data/ml"'])
    with pytest.raises(ConfigError) as info:
        refuse_changed(config.data, DATASET_ONLY_KEYS, "applies to --dataset runs")
    assert info.value.errors == [
        "data.split: applies to --dataset runs. Received: 'u2'",
        "data.data_dir: applies to --dataset runs. Received: '/data/ml'",
    ]
