"""Checkpoints: an interrupted and resumed fit ends with the weights of an uninterrupted one;
a missing, corrupt, partial or foreign checkpoint is refused, naming the file."""

import json
import re

import pytest
import torch

from dcnrank.training import TrainConfig, Trainer, fit_with_early_stopping
from dcnrank.training.checkpoint import CHECKPOINT_FILE, CheckpointError

CONFIG = TrainConfig(epochs=3, batch_size=24, learning_rate=0.05, shuffle=True, seed=3, checkpoint_every=4)


def regression(n=100):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return x, x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.3


def mlp():
    torch.manual_seed(0)  # dropout draws from torch's RNG, which a checkpoint must carry
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1), torch.nn.Flatten(0)
    )


class Interrupt(Exception):
    pass


def interrupting_mse(after_steps):
    """MSE that raises on training step `after_steps + 1`, as a crash would."""
    calls = {"n": 0}

    def loss(predictions, labels):
        if torch.is_grad_enabled():
            calls["n"] += 1
            if calls["n"] > after_steps:
                raise Interrupt
        return torch.nn.functional.mse_loss(predictions, labels)

    return loss


def assert_same_weights(a, b):
    for name, tensor in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[name], tensor, rtol=0, atol=0)


@pytest.mark.parametrize("after_steps", [6, 9, 10])  # mid-epoch 2 (ckpt at 4 or 8), and just after epoch 2's end
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, after_steps):
    x, y = regression()  # 5 batches per epoch, 15 steps in all
    reference = mlp()
    expected = Trainer(CONFIG).fit(reference, x, y, validation=(x, y))
    model = mlp()
    with pytest.raises(Interrupt):
        Trainer(CONFIG, loss_fn=interrupting_mse(after_steps)).fit(model, x, y, (x, y), checkpoint_dir=tmp_path)
    resumed = mlp()
    torch.manual_seed(123)  # the resumed process's RNG starts elsewhere; the checkpoint restores it
    history = Trainer(CONFIG).fit(resumed, x, y, validation=(x, y), checkpoint_dir=tmp_path, resume=True)
    assert_same_weights(reference, resumed)
    assert [e["loss"] for e in history.epochs] == expected.loss
    assert [e["val_rmse"] for e in history.epochs] == [e["val_rmse"] for e in expected.epochs]


def test_early_stopping_resume_keeps_best_epoch_and_patience(tmp_path):
    # Validating against -y: epoch 1 is best, and a patience of 2 stops after epoch 3.
    x, y = regression()
    config = TrainConfig(epochs=8, batch_size=24, learning_rate=0.05, checkpoint_every=100)
    reference = mlp()
    expected = fit_with_early_stopping(Trainer(config), reference, x, y, (x, -y), patience=2)
    assert expected.best_epoch == 1 and len(expected.history.epochs) == 3
    with pytest.raises(Interrupt):  # after epoch 2 (10 steps): best epoch 1, one stale epoch
        fit_with_early_stopping(
            Trainer(config, loss_fn=interrupting_mse(12)), mlp(), x, y, (x, -y), patience=2, checkpoint_dir=tmp_path
        )
    model = mlp()
    result = fit_with_early_stopping(
        Trainer(config), model, x, y, (x, -y), patience=2, checkpoint_dir=tmp_path, resume=True
    )
    assert (result.best_epoch, result.stopped_early) == (1, True)
    assert [e["val_rmse"] for e in result.history.epochs] == [e["val_rmse"] for e in expected.history.epochs]
    assert_same_weights(reference, model)  # the best epoch's weights, carried by the checkpoint


def test_resume_after_the_last_epoch_trains_no_more(tmp_path):
    x, y = regression()
    trained = mlp()
    Trainer(CONFIG).fit(trained, x, y, checkpoint_dir=tmp_path)
    again = mlp()
    history = Trainer(CONFIG).fit(again, x, y, checkpoint_dir=tmp_path, resume=True)
    assert len(history.epochs) == 3
    assert_same_weights(trained, again)


@pytest.fixture
def checkpointed(tmp_path):
    x, y = regression()
    Trainer(CONFIG).fit(mlp(), x, y, checkpoint_dir=tmp_path)
    document = json.loads((tmp_path / CHECKPOINT_FILE).read_text())
    return tmp_path, x, y, tmp_path / document["tensors"]


def resume_fails(folder, x, y, match, config=CONFIG):
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=match):
        Trainer(config).fit(model, x, y, checkpoint_dir=folder, resume=True)
    for name, tensor in before.items():  # never half-loaded
        assert torch.equal(model.state_dict()[name], tensor)


def test_truncated_tensors_file(checkpointed):
    folder, x, y, tensors = checkpointed
    tensors.write_bytes(tensors.read_bytes()[:100])
    resume_fails(folder, x, y, rf"{tensors.name}: checksum mismatch \(truncated or corrupt\)")


def test_flipped_byte_fails_the_checksum(checkpointed):
    folder, x, y, tensors = checkpointed
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0xFF
    tensors.write_bytes(bytes(data))
    resume_fails(folder, x, y, rf"{tensors.name}: checksum mismatch")


def test_missing_tensors_file(checkpointed):
    folder, x, y, tensors = checkpointed
    tensors.unlink()
    resume_fails(folder, x, y, rf"{tensors.name}: missing; .*{CHECKPOINT_FILE} names it")


def test_truncated_json(checkpointed):
    folder, x, y, _ = checkpointed
    path = folder / CHECKPOINT_FILE
    path.write_bytes(path.read_bytes()[:50])
    resume_fails(folder, x, y, rf"{CHECKPOINT_FILE}: corrupt or truncated checkpoint")


def test_json_without_keys(checkpointed):
    folder, x, y, _ = checkpointed
    (folder / CHECKPOINT_FILE).write_text('{"format": 1}')
    resume_fails(folder, x, y, rf"{CHECKPOINT_FILE}: not a dcnrank checkpoint; missing keys \['fingerprint'")


def test_unknown_format(checkpointed):
    folder, x, y, _ = checkpointed
    path = folder / CHECKPOINT_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), "format": 99}))
    resume_fails(folder, x, y, r"unsupported checkpoint format\. Received: format=99")


def test_missing_checkpoint(tmp_path):
    x, y = regression()
    resume_fails(tmp_path, x, y, rf"{CHECKPOINT_FILE}: no checkpoint here \(the file is missing\)")


def test_other_settings_are_refused(checkpointed):
    folder, x, y, _ = checkpointed
    other = TrainConfig(**{**CONFIG.to_dict(), "learning_rate": 0.1})
    resume_fails(folder, x, y, rf"{CHECKPOINT_FILE}: written for other settings \(config fingerprint", other)
    resume_fails(folder, x, y + 1, "written for other settings")  # other labels
    # checkpoint_every is not a setting of the result: changing it still resumes.
    Trainer(TrainConfig(**{**CONFIG.to_dict(), "checkpoint_every": 7})).fit(
        mlp(), x, y, checkpoint_dir=folder, resume=True
    )


def test_other_model_is_refused(checkpointed, monkeypatch):
    folder, x, y, _ = checkpointed
    monkeypatch.setattr(Trainer, "fingerprint", lambda self, model, y: "same")  # reach the shape check
    document = json.loads((folder / CHECKPOINT_FILE).read_text())
    (folder / CHECKPOINT_FILE).write_text(json.dumps({**document, "fingerprint": "same"}))
    model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Flatten(0))
    with pytest.raises(CheckpointError, match=r"does not fit the model; differing tensors \['0.bias', '0.weight'"):
        Trainer(CONFIG).fit(model, x, y, checkpoint_dir=folder, resume=True)


def test_existing_checkpoint_is_not_overwritten_without_resume(checkpointed):
    folder, x, y, _ = checkpointed
    with pytest.raises(CheckpointError, match=rf"{CHECKPOINT_FILE}: a checkpoint is already here; resume it"):
        Trainer(CONFIG).fit(mlp(), x, y, checkpoint_dir=folder)


def test_argument_errors():
    x, y = regression()
    with pytest.raises(ValueError, match=r"`resume=True` needs a `checkpoint_dir`\. Received: checkpoint_dir=None"):
        Trainer(CONFIG).fit(mlp(), x, y, resume=True)
    with pytest.raises(ValueError, match=r"`checkpoint_every` must be a positive int\. Received: checkpoint_every=0"):
        TrainConfig(checkpoint_every=0)


def test_only_the_latest_tensors_file_is_kept(checkpointed):
    folder, *_ = checkpointed
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 2 and names[1] == CHECKPOINT_FILE
    assert re.fullmatch(r"checkpoint-000000015-[0-9a-f]{8}\.safetensors", names[0])
