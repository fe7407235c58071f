"""`ListBatches`: a group's rows as padded lists, for the ranking losses through the one `Trainer`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dcnrank.config.train_config import TrainConfig
from dcnrank.metrics.ranking import ndcg
from dcnrank.training.list_batches import ListBatches, group_lists
from dcnrank.training.ranking_losses import RANKING_LOSSES
from dcnrank.training.trainer import BatchStream, Trainer
from dcnrank.world import World

GROUPS = np.array(["a", "b", "a", "c", "b", "a", "d", "d", "a"])
LABELS = torch.tensor([3.0, 1.0, 0.0, 2.0, 0.0, 1.0, 1.0, 1.0, 2.0])


def test_groups_of_one_row_or_one_label_are_counted_and_left_out():
    kept = group_lists(GROUPS, LABELS.numpy())
    assert kept.order.tolist() == [0, 2, 5, 8, 1, 4]  # a's rows, then b's, by first appearance
    assert kept.sizes.tolist() == [4, 2] and kept.starts.tolist() == [0, 4]
    assert (kept.skipped_single, kept.skipped_tied) == (1, 1)  # c: one row; d: labels 1, 1
    assert kept.notice == (
        "ranking: 2 groups train; left out 1 with one row and 1 whose rows all have the same label (nothing to order)"
    )
    assert group_lists(np.array([1, 1]), np.array([0.0, 1.0])).notice is None


def test_each_list_holds_one_groups_rows_once_and_pads_with_minus_one():
    x = torch.arange(9.0)
    data = ListBatches(x, LABELS, GROUPS, list_size=3, lists_per_group=5, lists_per_batch=4, seed=0, world=World())
    assert isinstance(data, BatchStream) and data.num_lists == 10 and data.num_batches(0) == 3
    batches = list(data.batches(0, 0))
    assert [tuple(yb.shape) for _, yb, _ in batches] == [(4, 3), (4, 3), (2, 3)]
    owners = {0: "a", 2: "a", 5: "a", 8: "a", 1: "b", 4: "b"}
    for xb, yb, weight in batches:
        assert weight == 1.0
        for rows, labels in zip(xb.view(-1, 3).long().tolist(), yb.tolist(), strict=True):
            filled = [r for r, label in zip(rows, labels, strict=True) if label >= 0]
            assert len({owners[r] for r in rows}) == 1 and len(set(filled)) == len(filled)
            assert labels == [LABELS[r].item() if label >= 0 else -1.0 for r, label in zip(rows, labels, strict=True)]
            assert len(filled) == (3 if owners[rows[0]] == "a" else 2)  # a: 3 of its 4 rows; b: both, one pad


def test_an_epoch_always_draws_the_same_lists_and_the_next_epoch_others():
    data = ListBatches(torch.arange(9.0), LABELS, GROUPS, 3, 5, 4, seed=0, world=World())
    first, again, second = data.draw(0), data.draw(0), data.draw(1)
    assert torch.equal(first[0], again[0]) and not torch.equal(first[0], second[0])
    skipped = [xb for xb, _, _ in data.batches(0, skip=2)]
    assert torch.equal(skipped[0], list(data.batches(0, 0))[2][0])


def test_a_ranking_loss_trains_a_model_through_the_trainer():
    """200 groups of 8 items whose relevance is a hidden linear score: a linear model trained
    on pairwise hinge lists orders the held-out groups' items far better than at the start."""
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(1600, 4)), dtype=torch.float32)
    relevance = torch.clamp(torch.round(x @ torch.tensor([1.0, -0.5, 0.25, 0.0]) + 1.5), 0, 3)
    groups = np.repeat(np.arange(200), 8)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Flatten(0))
    before = ndcg(relevance.numpy(), model(x).detach().numpy(), groups, k=5)
    data = ListBatches(x, relevance, groups, list_size=5, lists_per_group=4, lists_per_batch=32, seed=0, world=World())
    trainer = Trainer(TrainConfig(epochs=5, learning_rate=0.05), loss_fn=RANKING_LOSSES["pairwise_hinge"])
    history = trainer.fit(model, data, None)
    after = ndcg(relevance.numpy(), model(x).detach().numpy(), groups, k=5)
    assert history.epochs[-1]["loss"] < history.epochs[0]["loss"]
    assert after > 0.95 and after > before + 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"list_size": 1}, r"`list_size` must be an int ≥ 2\. Received: list_size=1"),
        ({"lists_per_group": -1}, r"`lists_per_group` must be an int ≥ 0\. Received: lists_per_group=-1"),
        ({"lists_per_batch": True}, r"`lists_per_batch` must be an int ≥ 1\. Received: lists_per_batch=True"),
    ],
)
def test_bad_sizes(kwargs, message):
    sizes = {"list_size": 3, "lists_per_group": 1, "lists_per_batch": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        ListBatches(torch.arange(9.0), LABELS, GROUPS, seed=0, world=World(), **sizes)


def test_no_group_to_order_is_an_error_that_counts_them():
    with pytest.raises(ValueError, match=r"two rows of different labels.*1 groups of one row, 1 of equal labels"):
        ListBatches(torch.arange(3.0), torch.tensor([1.0, 1.0, 2.0]), np.array([0, 0, 1]), 2, 1, 1, 0, World())
