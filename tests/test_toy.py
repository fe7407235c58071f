"""The toy experiment: the seed's data, a short run that learns, the seed's claim."""

import pytest
import torch
from torch.testing import assert_close

from dcnrank.experiments import TOY_FEATURES, mixer_data, run_toy
from dcnrank.explain import interaction_matrix


def test_mixer_data_follows_the_formula():
    x, y = mixer_data(1000, seed=1)
    c, b, k = x.unbind(1)
    assert_close(y, 0.1 * c + 0.4 * b + 0.7 * k + 0.1 * c * b + 3.1 * b * k + 0.1 * k * k)
    assert set((c * 200).round().unique().tolist()) <= set(range(200))
    assert set((k * 6).round().unique().tolist()) == set(range(6))
    assert torch.equal(mixer_data(50, seed=2)[0], mixer_data(50, seed=2)[0])
    assert not torch.equal(mixer_data(50, seed=2)[0], mixer_data(50, seed=3)[0])
    with pytest.raises(ValueError, match=r"num_rows=0"):
        mixer_data(0)


def test_short_run_learns_and_is_deterministic():
    runs = [run_toy(epochs=3, num_rows=6000, num_train=5000, seed=4) for _ in range(2)]
    first, again = runs
    assert first.models["cross"].params == 16
    assert first.models["deep"].params == 166_401
    assert first.models["cross"].rmse == again.models["cross"].rmse
    assert first.models["deep"].rmse == again.models["deep"].rmse
    # the label's standard deviation is about 0.9: a model that learned nothing scores ~0.9
    _, y = mixer_data(6000, seed=4)
    assert first.models["deep"].rmse[0] < 0.5 * float(y.std())


def test_trials_differ():
    result = run_toy(epochs=1, trials=2, num_rows=3000, num_train=2000, models=("cross",))
    assert len(result.models["cross"].rmse) == 2
    assert result.models["cross"].rmse[0] != result.models["cross"].rmse[1]
    with pytest.raises(ValueError, match=r"`models` must name"):
        run_toy(models=("wide",))
    with pytest.raises(ValueError, match=r"num_train=10"):
        run_toy(num_rows=10, num_train=10)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seed_claim_cross_network_learns_the_crosses(seed):
    """The seed's claim: 16 parameters reach RMSE <= 0.005, bananas x cookbooks dominates.

    One trial trains alone (`Trainer`), as `run_toy` does by default; stacked training gives
    the same numbers (`test_stacked`)."""
    result = run_toy(epochs=100, seed=seed, models=("cross",))
    assert result.models["cross"].rmse[0] <= 0.005
    matrix = interaction_matrix(result.trained["cross"].first_cross_layer(), len(TOY_FEATURES))
    off_diagonal = [(matrix[i, j], (i, j)) for i in range(3) for j in range(3) if i != j]
    assert max(off_diagonal)[1] in {(1, 2), (2, 1)}
