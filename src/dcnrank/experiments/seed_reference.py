"""The numbers the Keras-RS tutorial printed, to show beside ours."""

from __future__ import annotations

# experiment -> model -> (RMSE mean, RMSE std or None for one trial, #params)
SEED_RESULTS: dict[str, dict[str, tuple[float, float | None, int]]] = {
    "toy": {
        "cross": (0.002540863584727049, None, 16),
        "deep": (0.0026898200158029795, None, 166_401),
    },
    "movielens": {
        "cross": (0.8887265503406525, 0.02188869864935667, 221_953),
        "cross_low_rank": (0.9222802877426147, 0.044382040717192484, 192_769),
        "deep": (0.8751056969165802, 0.029525712693164348, 221_953),
    },
}
