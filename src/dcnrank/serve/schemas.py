"""The JSON bodies of the service for one bundle, derived from its feature spec (pydantic
models made with `create_model`): each column's field has the type its vocabulary or
column type holds, under the column's own name. Requests are strict (no coercion, unknown
fields refused) and bounded by :mod:`dcnrank.serve.limits` and, for every string,
:data:`dcnrank.limits.MAX_STRING_CHARS`; responses document the output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, create_model
from pydantic_core import PydanticCustomError

from dcnrank.bundle.bundle import Bundle
from dcnrank.bundle.ranking import context_columns, id_kind
from dcnrank.data.spec.feature_spec import CategoricalColumn, NumericColumn
from dcnrank.limits import MAX_STRING_CHARS
from dcnrank.serve.limits import MAX_ROWS

__all__ = [
    "MAX_ITEMS_PER_CELL",
    "ErrorResponse",
    "FieldError",
    "HealthResponse",
    "ServiceSchemas",
    "service_schemas",
]


def _feature_value(value: Any) -> int | str:
    """A raw feature value is a JSON integer or string (not a float, bool, null, list),
    a string at most :data:`~dcnrank.limits.MAX_STRING_CHARS` long."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be an int or a str")
    if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
        # the same error as a `max_length` field's, so that both read the same
        raise PydanticCustomError(
            "string_too_long",
            "String should have at most {max_length} characters",
            {"max_length": MAX_STRING_CHARS},
        )
    return value


FeatureValue = Annotated[int | str, PlainValidator(_feature_value, json_schema_input_type=int | str)]


# Most items one multi-hot value of a request may list.
MAX_ITEMS_PER_CELL = 1000
_INT64 = 2**63 - 1

IntId = Annotated[int, Field(strict=True, ge=-_INT64 - 1, le=_INT64)]


def _text_id(value: Any) -> str:
    """A value of a text vocabulary: a JSON string, or a JSON integer read as its digits (ids that
    a CSV stored as text, e.g. `"42"`, arrive as `42` from most clients)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ValueError("must be a str (or an int, read as its digits)")
    return _feature_value(value)  # type: ignore[return-value]  # a str stays a str


StrId = Annotated[str, PlainValidator(_text_id, json_schema_input_type=int | str)]
Number = Annotated[float, Field(allow_inf_nan=False)]


def _strict(name: str, doc: str) -> ConfigDict:
    return ConfigDict(extra="forbid", strict=True, populate_by_name=False, title=name, json_schema_extra={"doc": doc})


@dataclass(frozen=True)
class ServiceSchemas:
    """The request and response models of one bundle's service."""

    rank_request: type[BaseModel]
    rank_response: type[BaseModel]
    predict_request: type[BaseModel]
    predict_response: type[BaseModel]


def category_type(kind: str | None) -> Any:
    """The field type of a category value of a vocabulary of `kind` (`"int"`, `"str"`, or None: either)."""
    return {"int": IntId, "str": StrId}.get(kind or "", FeatureValue)


def value_type(bundle: Bundle, name: str) -> Any:
    """The field type of a value of input column `name`: a category of its vocabulary's kind,
    a finite number, or (multi-hot) items: a list, or a string of separated items."""
    column = next(c for c in bundle.spec.columns if c.name == name)
    kind = id_kind(bundle, name)
    if isinstance(column, CategoricalColumn):
        return category_type(kind)
    if isinstance(column, NumericColumn):
        return Number
    items: Any = Annotated[list[category_type(kind)], Field(max_length=MAX_ITEMS_PER_CELL)]  # type: ignore[misc]
    return items | StrId


def _columns_model(bundle: Bundle, title: str, names: tuple[str, ...], doc: str) -> type[BaseModel]:
    """A model with one optional field per column, named as the column (an alias: a
    column's name need not be a Python identifier)."""
    fields: dict[str, Any] = {
        f"c{i}": (value_type(bundle, name) | None, Field(None, alias=name)) for i, name in enumerate(names)
    }
    return create_model(title, __config__=_strict(title, doc), **fields)


def service_schemas(bundle: Bundle) -> ServiceSchemas:
    """The request and response models of `bundle`'s `/rank` and `/predict`.

    `/rank` takes `user_id` (typed as the spec's user column's vocabulary holds: an
    int or a str), `user` (one optional field per `user_columns`), `context` (one per
    other input column), `candidates` (item ids) and `top`; it answers items with their
    `item` columns (the item column and `item_columns`). `/predict` takes `rows`, each
    with one optional field per input column. Requests are strict: no coercion, unknown
    fields refused. A spec without user and item roles gets a `/rank` request of
    `user_id`, `candidates` and `top` only (the service answers it with a 422).

    Example:
        >>> from dcnrank.data.spec.feature_spec import FeatureSpec
        >>> from dcnrank.data.encoding.table_encoder import TableEncoder
        >>> from dcnrank.models import DCNConfig
        >>> from dcnrank.models.table_inputs import build_table_dcn
        >>> spec = FeatureSpec((CategoricalColumn("u"), CategoricalColumn("i"), NumericColumn("age")), label="y",
        ...                    task="binary", user="u", item="i", user_columns=("age",))
        >>> encoder = TableEncoder.fit(spec, {"u": [1, 2], "i": ["a", "b"], "age": [30, 40], "y": [0, 1]})
        >>> config = DCNConfig(structure="cross_only", embedding_dim=2)
        >>> found = service_schemas(Bundle(build_table_dcn(config, spec, encoder.table_sizes), config, encoder))
        >>> found.rank_request.model_validate({"user_id": 1, "user": {"age": 31.5}}).user.model_dump(by_alias=True)
        {'age': 31.5}
        >>> found.rank_request.model_validate({"user_id": "1"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        pydantic_core._pydantic_core.ValidationError: 1 validation error for RankRequest
        user_id
          Input should be a valid integer [type=int_type, input_value='1', input_type=str]
        ...
    """
    spec = bundle.spec
    user, item = spec.user, spec.item
    user_id_type: Any = category_type(id_kind(bundle, user)) if user is not None else FeatureValue
    item_id_type = category_type(id_kind(bundle, item)) if item is not None else FeatureValue
    rank_fields: dict[str, Any] = {
        "user_id": (user_id_type | None, Field(None, description=f"the user: a value of the column {user!r}")),
    }
    if spec.user_columns:
        users = _columns_model(bundle, "UserColumns", spec.user_columns, "the user's columns")
        rank_fields["user"] = (
            users | None,
            Field(None, description="the user's columns; they override the catalogue's"),
        )
    context = context_columns(spec) if user is not None and item is not None else ()
    if context:
        contexts = _columns_model(bundle, "ContextColumns", context, "the request's other columns")
        rank_fields["context"] = (contexts | None, Field(None, description="values of the other input columns"))
    rank_fields["candidates"] = (
        Annotated[list[item_id_type], Field(min_length=1, max_length=MAX_ROWS)] | None,  # type: ignore[valid-type]
        Field(None, description=f"values of {item!r} to rank (default: the catalogue's items the user has not had)"),
    )
    rank_fields["top"] = (
        Annotated[int, Field(strict=True, ge=1)] | None,
        Field(None, description="how many items to return (default 10)"),
    )
    rank_request = create_model("RankRequest", __config__=_strict("RankRequest", "POST /rank"), **rank_fields)

    item_names = (item, *spec.item_columns) if item is not None else ()
    item_fields: dict[str, Any] = {f"c{i}": (Any, Field(None, alias=name)) for i, name in enumerate(item_names)}
    item_model = create_model("Item", __config__=ConfigDict(serialize_by_alias=True), **item_fields)
    ranked = create_model(
        "RankedItem",
        rank=(int, Field(description="1 for the best")),
        score=(float, Field(description="a probability for a binary task, the prediction for regression")),
        item=(item_model, Field(description="the item column and the spec's item columns")),
    )
    rank_response = create_model(
        "RankResponse",
        user_id=(Any, Field(description="the user, as the request gave it")),
        candidates=(int, Field(description="how many items were scored")),
        items=(list[ranked], ...),  # type: ignore[valid-type]
        unknown=(dict[str, list[Any]], Field(description="column -> given values scored through the OOV row")),
        missing=(list[str], Field(description="input columns no one gave, scored as missing")),
        notices=(list[str], Field(description="what went through the OOV row or was missing, in words")),
    )
    row = _columns_model(bundle, "Row", spec.input_names, "one row: input column -> value (absent: missing)")
    rows: Any = Annotated[list[row], Field(min_length=1, max_length=MAX_ROWS)]  # type: ignore[valid-type]
    predict_request = create_model(
        "PredictRequest",
        __config__=_strict("PredictRequest", "POST /predict"),
        rows=(rows, Field(description="one object per row, keyed by the spec's input columns")),
    )
    predict_response = create_model(
        "PredictResponse",
        scores=(list[float], Field(description="per row, a probability for a binary task, else the prediction")),
        unknown=(dict[str, list[Any]], Field(description="column -> values scored through the OOV row")),
    )
    return ServiceSchemas(rank_request, rank_response, predict_request, predict_response)


class HealthResponse(BaseModel):
    status: str
    dcnrank_version: str
    model: dict
    catalog: dict | None
    limits: dict


class FieldError(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    error: str = Field(description="the first problem, `field: message`")
    errors: list[FieldError]
