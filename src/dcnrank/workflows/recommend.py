"""Recommend items for a user through the one ranking core
(`dcnrank.bundle.ranking.rank_items`, which `POST /rank` also calls)."""

from __future__ import annotations

from dcnrank.bundle.bundle import Bundle
from dcnrank.bundle.ranking import Ranking, id_kind, rank_items

__all__ = ["parse_user_id", "recommend_items"]


def parse_user_id(bundle: Bundle, text: str) -> int | str:
    """A user id typed on the command line as the bundle's user column holds it:
    an int for a column of ints, else the text itself.

    Raises:
        ValueError: naming `--user`, if the column holds ints and `text` is not one, or the
            bundle's spec names no user column.

    Example:
        >>> from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec
        >>> from dcnrank.data.encoding.table_encoder import TableEncoder
        >>> from dcnrank.models import DCNConfig
        >>> from dcnrank.models.table_inputs import build_table_dcn
        >>> spec = FeatureSpec((CategoricalColumn("u"), CategoricalColumn("i")), label="y", task="binary",
        ...                    user="u", item="i")
        >>> encoder = TableEncoder.fit(spec, {"u": [1, 2], "i": ["a", "b"], "y": [0, 1]})
        >>> config = DCNConfig(structure="cross_only", embedding_dim=2)
        >>> parse_user_id(Bundle(build_table_dcn(config, spec, encoder.table_sizes), config, encoder), "42")
        42
    """
    user = bundle.spec.user
    if user is None:
        raise ValueError(f"--user: this bundle's spec names no user column, so it cannot recommend. Received: {text!r}")
    if id_kind(bundle, user) == "str":
        return text
    try:
        return int(text)
    except ValueError:
        if id_kind(bundle, user) == "int":
            raise ValueError(f"--user must be an integer: the column {user!r} holds ints. Received: {text!r}") from None
        return text


def recommend_items(bundle: Bundle, user: str, top: int = 10) -> Ranking:
    """`dcnrank recommend`: the `top` catalogue items for the user whose id
    is the text `user`, as `POST /rank` ranks them (:func:`dcnrank.bundle.ranking.rank_items`).

    Raises:
        ValueError: if `user` is not an id of the user column's kind.
        RankingError: as `rank_items` (e.g. a bundle without a catalogue).
    """
    return rank_items(bundle, parse_user_id(bundle, user), top=top)
