"""Nothing lost, nothing crashes (user files and bundles): `--out` folders that are not
bundles are never replaced, and are refused before training; predictions never overwrite
their input; every bundle file is checksummed; `--resume` before the first checkpoint
starts afresh; and only stale temporaries of dcnrank's own naming are cleaned up."""

import hashlib
import importlib
import json
import logging
import os
import re
import uuid

import pytest
from bundle_support import build_bundle

from dcnrank import atomic
from dcnrank.bundle import BundleError, check_bundle_target, load
from dcnrank.cli.main import main
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, NumericColumn
from dcnrank.models import DCNConfig
from dcnrank.training.checkpoint import CHECKPOINT_FILE, CheckpointError, resume_or_start
from dcnrank.workflows.predict import check_predictions_out, predict_table

SPEC = FeatureSpec((NumericColumn("x"), CategoricalColumn("c")), label="y", task="binary")
SPEC_TOML = 'task = "binary"\nlabel = "y"\n[columns]\nx = "numeric"\nc = "categorical"\n'
QUICK = ["model.structure=cross_only", "model.embedding_dim=2", "train.epochs=1", "train.batch_size=16"]
# the modules (`dcnrank.workflows` and `dcnrank.cli` export functions of the same names)
train_module = importlib.import_module("dcnrank.workflows.train")
cli_common = importlib.import_module("dcnrank.cli.common")


def table_rows(n=40):
    return {"id": list(range(n)), "x": [i / n for i in range(n)], "c": ["ab"[i % 2] for i in range(n)],
            "y": [i % 2 for i in range(n)]}  # fmt: skip


def write_csv(path, rows):
    names = list(rows)
    lines = [",".join(names)] + [",".join(str(rows[n][i]) for n in names) for i in range(len(rows[names[0]]))]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def table(tmp_path):
    """A 40-row CSV and its spec file."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC_TOML)
    return write_csv(tmp_path / "t.csv", table_rows()), spec


def save_table_bundle(path):
    """A bundle of `SPEC` (no roles) fitted on `table_rows()`: what `predict` scores here."""
    return build_bundle(path, spec=SPEC, table=table_rows(), config=DCNConfig(structure="cross_only", embedding_dim=2))


def save_catalog_bundle(path):
    """A bundle of the shared spec, with its catalogue (`bundle_support`)."""
    return build_bundle(path)


def old_bundle(folder, format_name, version):
    """A bundle folder of an older dcnrank: a manifest of `format_name` version `version` (2 and
    later) or, for version 1, the sums in config.json without a manifest."""
    folder.mkdir()
    files = {"weights.safetensors": b"w", "vocab.json": b"{}", "metrics.json": b"{}"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    config = {"format": format_name, "format_version": version, "dcnrank_version": "0.1.0"}
    if version == 1:
        config["sha256"] = sums
    (folder / "config.json").write_text(json.dumps(config))
    if version > 1:
        sums["config.json"] = hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()
        (folder / "manifest.json").write_text(json.dumps({**config, "sha256": sums}))
    return folder


def snapshot(folder):
    """Every path under `folder` with its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def error_line(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("dcnrank ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def make_stale(path):
    """Set the mtime of `path` (and everything in it) to before this process started."""
    then = atomic.process_start_time() - 100
    for p in [*path.rglob("*"), path] if path.is_dir() else [path]:
        os.utime(p, (then, then), follow_symlinks=False)


# ----------------------------------------------------------------- 1. only bundles are replaced


def user_project(folder):
    """A folder that merely holds a config.json: someone's project."""
    (folder / "src").mkdir(parents=True)
    (folder / "config.json").write_text('{"name": "my project"}')
    (folder / "src" / "main.py").write_text("print('hello')\n")
    (folder / "NOTES.md").write_text("do not delete\n")
    return folder


def test_train_refuses_a_folder_that_merely_holds_config_json(table, tmp_path, capsys):
    data, spec = table
    project = user_project(tmp_path / "project")
    before = snapshot(project)
    assert main(["train", "--data", str(data), "--spec", str(spec), *QUICK, "--out", str(project), "--quiet"]) == 2
    line = error_line(capsys)
    assert re.search(r"project: exists and is not a dcnrank bundle \(it holds NOTES\.md, src, which a bundle "
                     r"never does\); refusing to replace it", line), line  # fmt: skip
    assert snapshot(project) == before and hidden(tmp_path) == []


def version_one_bundle(folder, format_name="dcnrank.bundle"):
    """A bundle of format version 1: sums in config.json, no manifest."""
    return old_bundle(folder, format_name, 1)


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (user_project, r"it holds NOTES\.md, src, which a bundle never does"),
        (lambda f: (save_catalog_bundle(f) / "NOTES.md").write_text("mine"), r"it holds NOTES\.md, which a bundle"
         r" never does"),
        (lambda f: f.mkdir() or (f / "config.json").write_text("{}"), r"no manifest\.json"),
        (lambda f: version_one_bundle(f, "keras"), r"no manifest\.json"),
        (lambda f: f.mkdir() or (f / "manifest.json").write_text('{"format": "other"}'),
         r"its manifest\.json does not name a dcnrank bundle format"),
        (lambda f: save_catalog_bundle(f) and (f / "manifest.json").write_text("{trunc"),
         r"its manifest\.json does not name a dcnrank bundle format"),
    ],
)  # fmt: skip
def test_save_refuses_folders_that_are_not_bundles(tmp_path, make, why):
    folder = tmp_path / "out"
    make(folder)
    before = snapshot(folder)
    for saving in (save_catalog_bundle, save_table_bundle):  # with and without a catalogue
        with pytest.raises(BundleError, match=rf"out: exists and is not a dcnrank bundle \({why}\); refusing"):
            saving(folder)
    assert snapshot(folder) == before and hidden(tmp_path) == []


def test_check_bundle_target_refuses_files_links_and_unmakeable_paths(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(BundleError, match=r"file: exists and is not a folder; refusing"):
        check_bundle_target(tmp_path / "file")
    with pytest.raises(BundleError, match=r"file/b: cannot create it: .*file is not a folder"):
        check_bundle_target(tmp_path / "file" / "b")
    (tmp_path / "link").symlink_to(save_catalog_bundle(tmp_path / "real"))
    with pytest.raises(BundleError, match=r"link: is a symbolic link; refusing to replace it"):
        save_catalog_bundle(tmp_path / "link")
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(BundleError, match=r"locked/b: cannot write it: the folder .*locked is not writable"):
            check_bundle_target(locked / "b")
    assert check_bundle_target(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"


def test_save_replaces_a_bundle_with_heatmaps_and_a_version_one_bundle(tmp_path):
    first = save_table_bundle(tmp_path / "b")
    (first / "interactions.png").write_bytes(b"png")
    (first / "interactions_layer1.png").write_bytes(b"png")
    save_catalog_bundle(first)
    assert sorted(p.name for p in first.iterdir()) == [
        "catalog.json", "catalog.safetensors", "config.json", "manifest.json", "metrics.json", "vocab.json",
        "weights.safetensors",
    ]  # fmt: skip
    old = version_one_bundle(tmp_path / "old", "dcnrank.table_bundle")
    assert load(save_table_bundle(old)).path == old
    older = old_bundle(tmp_path / "older", "dcnrank.bundle", 2)  # a MovieLens bundle of an older dcnrank
    assert load(save_catalog_bundle(older)).catalog is not None
    (tmp_path / "empty").mkdir()
    assert load(save_catalog_bundle(tmp_path / "empty")).path == tmp_path / "empty"
    assert hidden(tmp_path) == []


# ----------------------------------------------------------------- 2. --out is checked before training


def forbid(monkeypatch, module, name):
    def refused(*args, **kwargs):
        raise AssertionError(f"{name} ran: the data was read before --out was checked")

    monkeypatch.setattr(module, name, refused)


@pytest.mark.parametrize("kind", ["file", "project", "under a file"])
@pytest.mark.parametrize("run", ["movielens", "table", "torchrun rank 0"])
def test_train_checks_out_before_reading_data(table, tmp_path, monkeypatch, capsys, kind, run):
    data, spec = table
    (tmp_path / "afile").write_text("mine")
    out = {"file": tmp_path / "afile", "project": user_project(tmp_path / "project"),
           "under a file": tmp_path / "afile" / "b"}[kind]  # fmt: skip
    forbid(monkeypatch, cli_common, "load_movielens_source")
    forbid(monkeypatch, train_module, "distributed_session")
    if run == "movielens":
        args = ["train", "--dataset", "movielens-100k", "--data-dir", str(tmp_path / "ml"), "--out", str(out)]
    else:
        args = ["train", "--data", str(data), "--spec", str(spec), *QUICK, "--out", str(out)]
    if run == "torchrun rank 0":
        for name, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2"}.items():
            monkeypatch.setenv(name, value)
    assert main(args) == 2
    message = {"file": r"afile: exists and is not a folder", "project": r"project: exists and is not a dcnrank bundle",
               "under a file": r"afile/b: cannot create it: .*afile is not a folder"}[kind]  # fmt: skip
    assert re.search(message, error_line(capsys))
    assert (tmp_path / "afile").read_text() == "mine"


# ----------------------------------------------------------------- 3, 4. predictions


@pytest.fixture
def scoring(tmp_path):
    """A table bundle, and a copy of its table to score."""
    return save_table_bundle(tmp_path / "model"), write_csv(tmp_path / "in.csv", table_rows())


@pytest.mark.parametrize("how", ["same path", "symlink", "hard link"])
def test_predict_never_writes_over_its_input(scoring, tmp_path, capsys, how):
    model, data = scoring
    before = data.read_bytes()
    out = {"same path": data, "symlink": tmp_path / "link.csv", "hard link": tmp_path / "hard.csv"}[how]
    if how == "symlink":
        out.symlink_to(data)
    if how == "hard link":
        os.link(data, out)
    assert main(["predict", "--model", str(model), "--data", str(data), "--out", str(out)]) == 2
    what = "a hard link to" if how == "hard link" else "the same file as"
    assert f"is the table being scored ({what} {data}); refusing to write the predictions over it" in (
        error_line(capsys)
    )
    assert data.read_bytes() == before and hidden(tmp_path) == []


def test_predict_replaces_only_a_predictions_file_and_refuses_a_folder(scoring, tmp_path, capsys):
    model, data = scoring
    out = tmp_path / "p.csv"
    out.write_text("old predictions\n")
    assert main(["predict", "--model", str(model), "--data", str(data), "--out", str(out), "--keep", "id"]) == 2
    assert "p.csv: exists and is not a predictions file" in error_line(capsys)
    assert out.read_text() == "old predictions\n"
    out.write_text("id,prediction\n1,0.5\n")  # an earlier run's predictions: replaced
    assert main(["predict", "--model", str(model), "--data", str(data), "--out", str(out), "--keep", "id"]) == 0
    assert out.read_text().splitlines()[0] == '"id","prediction"' and len(out.read_text().splitlines()) == 41
    (tmp_path / "dir.csv").mkdir()
    assert main(["predict", "--model", str(model), "--data", str(data), "--out", str(tmp_path / "dir.csv")]) == 2
    assert "dir.csv: is a folder; the predictions are written to a file" in error_line(capsys)
    with pytest.raises(ValueError, match=r"in\.csv/p\.csv: cannot create it: .*in\.csv is not a folder"):
        check_predictions_out(data, data / "p.csv")


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        (["prediction"], r"`keep` cannot copy a column named 'prediction': the output's own column has that name"),
        (["id", "x", "id"], r"`keep` names column\(s\) 'id' more than once.*Received: keep=\['id', 'x', 'id'\]"),
    ],
)
def test_keep_may_not_collide_with_an_output_column(scoring, tmp_path, capsys, keep, message):
    model, data = scoring
    rows = table_rows()
    with_prediction = write_csv(tmp_path / "scored.csv", {"prediction": rows["id"], **rows})
    out = tmp_path / "p.csv"
    assert main(["predict", "--model", str(model), "--data", str(with_prediction), "--out", str(out),
                 "--keep", *keep]) == 2  # fmt: skip
    assert re.search(message, error_line(capsys)) and not out.exists()
    with pytest.raises(ValueError, match=message):
        predict_table(load(model), {"prediction": rows["id"], **rows}, keep=keep)


# ----------------------------------------------------------------- 5, 6. the manifest, the kinds


def test_an_edited_statistic_is_refused_by_name(tmp_path):
    folder = save_table_bundle(tmp_path / "b")
    config = json.loads((folder / "config.json").read_text())
    config["numeric"]["x"]["mean"] = 100.0  # still valid JSON and a valid spec: only the sum tells
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match=r"b/config\.json: corrupt or modified file: SHA-256 [0-9a-f]{64} differs "
                       r"from the '[0-9a-f]{64}' recorded in manifest\.json"):  # fmt: skip
        load(folder)
    other = save_catalog_bundle(tmp_path / "p")
    text = (other / "config.json").read_text()
    (other / "config.json").write_text(text.replace('"embedding_dim": 2', '"embedding_dim": 2 '))  # same meaning
    with pytest.raises(BundleError, match=r"p/config\.json: corrupt or modified file"):
        load(other)
    (other / "manifest.json").unlink()
    with pytest.raises(BundleError, match=r"not a complete bundle: missing manifest\.json"):
        load(other)


MOVIELENS_RETRAIN = (
    r"retrain it with `dcnrank train --dataset NAME --split SPLIT --out DIR` "
    r"\(`dcnrank train --help` lists the datasets\)"
)
TABLE_RETRAIN = r"retrain it with `dcnrank train --data FILE --spec SPEC --out DIR`"


@pytest.mark.parametrize(
    ("format_name", "version", "message"),
    [
        ("dcnrank.bundle", 1, rf"a dataset model of an older dcnrank \(format 'dcnrank\.bundle' version 1, written "
         rf"by dcnrank 0\.1\.0\); this dcnrank reads version 3: {MOVIELENS_RETRAIN}$"),
        ("dcnrank.bundle", 2, rf"a dataset model of an older dcnrank \(format 'dcnrank\.bundle' version 2, .*"
         rf"{MOVIELENS_RETRAIN}$"),
        ("dcnrank.table_bundle", 1, rf"a table bundle of an older dcnrank \(format 'dcnrank\.table_bundle' version 1,"
         rf" written by dcnrank 0\.1\.0\); this dcnrank reads format 'dcnrank\.bundle' version 3: {TABLE_RETRAIN}$"),
        ("dcnrank.table_bundle", 2, rf"a table bundle of an older dcnrank .*{TABLE_RETRAIN}$"),
    ],
)  # fmt: skip
def test_an_older_bundle_is_refused_by_every_command_with_how_to_retrain(tmp_path, capsys, format_name, version,
                                                                          message):  # fmt: skip
    folder = old_bundle(tmp_path / "old", format_name, version)
    before = snapshot(folder)
    with pytest.raises(BundleError, match=rf"old: {message}"):
        load(folder)
    data = write_csv(tmp_path / "d.csv", table_rows())
    commands = [
        ["export", "--model", str(folder), "--format", "onnx"],
        ["predict", "--model", str(folder), "--data", str(data), "--out", str(tmp_path / "p.csv")],
        ["recommend", "--model", str(folder), "--user", "1"],
        ["explain", "--model", str(folder)],
        ["serve", "--model", str(folder), "--port", "0"],
    ]
    for args in commands:
        assert main(args) == 2
        line = error_line(capsys)
        assert line.startswith(f"dcnrank {args[0]}: error: ") and re.search(message, line), line
    assert snapshot(folder) == before and not (tmp_path / "p.csv").exists()


# ----------------------------------------------------------------- 7. --resume before the first checkpoint


@pytest.mark.parametrize("state", ["stale temporaries only", "an empty folder", "no folder"])
def test_resume_before_the_first_checkpoint_starts_afresh(table, tmp_path, caplog, state):
    data, spec = table
    checkpoints = tmp_path / "ckpt"
    if state != "no folder":
        checkpoints.mkdir()
    if state == "stale temporaries only":
        (checkpoints / f".checkpoint.json.tmp-{uuid.uuid4().hex}").write_text('{"half')
        make_stale(checkpoints / next(iter(hidden(checkpoints))))
    caplog.set_level(logging.INFO)
    args = ["train", "--data", str(data), "--spec", str(spec), *QUICK, "--checkpoint-dir", str(checkpoints)]
    assert main([*args, "--resume", "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert "no checkpoint yet (the run stopped before its first one); training from the beginning" in caplog.text
    assert (checkpoints / CHECKPOINT_FILE).is_file() and hidden(checkpoints) == []
    assert load(tmp_path / "b").metrics["history"][0]["epoch"] == 1


def test_resume_still_refuses_a_corrupt_checkpoint_and_a_file(table, tmp_path, capsys):
    data, spec = table
    checkpoints = tmp_path / "ckpt"
    checkpoints.mkdir()
    (checkpoints / CHECKPOINT_FILE).write_text('{"format": 1')
    args = ["train", "--data", str(data), "--spec", str(spec), *QUICK, "--resume", "--out", str(tmp_path / "b")]
    assert main([*args, "--checkpoint-dir", str(checkpoints)]) == 2
    assert f"{CHECKPOINT_FILE}: corrupt or truncated checkpoint" in error_line(capsys)
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(CheckpointError, match=r"afile: exists and is not a folder; checkpoints need a folder"):
        resume_or_start(tmp_path / "afile", resume=False)
    assert resume_or_start(None, resume=False) is False
    assert not (tmp_path / "b").exists()


# ----------------------------------------------------------------- 8. stale temporaries


def test_remove_stale_temporaries_removes_only_old_ones_of_our_naming(tmp_path):
    stale = tmp_path / f".b.tmp-{uuid.uuid4().hex}"
    stale.mkdir()
    (stale / "weights.safetensors").write_bytes(b"w" * 100)
    aside = tmp_path / f".b.old-{uuid.uuid4().hex}"
    aside.mkdir()
    table_part = tmp_path / ".tmp-0123abcd-b"
    table_part.write_text("half")
    fresh = tmp_path / f".b.tmp-{uuid.uuid4().hex}"
    fresh.mkdir()
    busy = tmp_path / f".b.tmp-{uuid.uuid4().hex}"  # an old folder still being written into
    busy.mkdir()
    kept = [tmp_path / ".b.tmp-notes", tmp_path / f".bb.tmp-{uuid.uuid4().hex}", tmp_path / f".b.tmp-{'A' * 32}",
            tmp_path / "b", tmp_path / f".c.tmp-{uuid.uuid4().hex}"]  # fmt: skip
    for path in kept:
        path.write_text("the user's")
    link = tmp_path / f".b.tmp-{uuid.uuid4().hex}"
    link.symlink_to(tmp_path / "b")
    for path in (stale, aside, table_part, busy, *kept, link):
        make_stale(path)
    (busy / "weights.safetensors").write_bytes(b"now")
    removed = atomic.remove_stale_temporaries(tmp_path / "b")
    assert sorted(removed) == sorted([stale, aside, table_part])
    assert all(p.exists() for p in (fresh, busy, *kept)) and link.is_symlink()
    assert atomic.remove_stale_temporaries(tmp_path / "missing" / "b") == []


def test_each_write_cleans_up_after_a_killed_one(tmp_path, scoring):
    model, data = scoring
    # a save
    staged = tmp_path / f".b.tmp-{uuid.uuid4().hex}"
    staged.mkdir()
    (staged / "weights.safetensors").write_bytes(b"w")
    make_stale(staged)
    save_catalog_bundle(tmp_path / "b")
    assert not staged.exists()
    # a predictions write
    part = tmp_path / ".tmp-0123abcd-p.csv"
    part.write_text("half")
    make_stale(part)
    assert main(["predict", "--model", str(model), "--data", str(data), "--out", str(tmp_path / "p.csv")]) == 0
    assert not part.exists()
    # a checkpoint write; a user's file of a near name stays
    checkpoints = tmp_path / "ckpt"
    checkpoints.mkdir()
    leftovers = [checkpoints / f".checkpoint.json.tmp-{uuid.uuid4().hex}",
                 checkpoints / f".checkpoint-000000003-0123abcd.safetensors.tmp-{uuid.uuid4().hex}"]  # fmt: skip
    mine = checkpoints / "checkpoint-notes.safetensors"
    for path in (*leftovers, mine):
        path.write_text("x")
        make_stale(path)
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC_TOML)
    args = ["train", "--data", str(data), "--spec", str(spec), *QUICK, "--checkpoint-dir", str(checkpoints)]
    assert main([*args, "--out", str(tmp_path / "trained"), "--quiet"]) == 0
    assert not any(p.exists() for p in leftovers) and mine.read_text() == "x"
    assert hidden(tmp_path) == [] and hidden(checkpoints) == []


def test_the_heatmaps_dcnrank_writes_into_a_bundle_count_as_bundle_files():
    from dcnrank.bundle.format import is_bundle_file
    from dcnrank.explain.model_interactions import INTERACTIONS_FILE

    assert is_bundle_file(INTERACTIONS_FILE) and is_bundle_file("interactions_layer2.png")
    assert not is_bundle_file("interactions.png.bak") and not is_bundle_file("notes.png")
