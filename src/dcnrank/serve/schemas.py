"""The JSON bodies of the service: requests are strict (no coercion, unknown fields
refused) and bounded by :mod:`dcnrank.serve.limits` and, for every string,
:data:`dcnrank.limits.MAX_STRING_CHARS`; responses document the output."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictInt, StrictStr
from pydantic_core import PydanticCustomError

from dcnrank.limits import MAX_STRING_CHARS
from dcnrank.serve.limits import MAX_ROWS

__all__ = [
    "ErrorResponse",
    "FieldError",
    "HealthResponse",
    "PredictRequest",
    "PredictResponse",
    "RankRequest",
    "RankResponse",
    "RankedItem",
    "UserFeatures",
]

INT64_MAX = 2**63 - 1
# A MovieLens id: a positive JSON integer (not "42", 42.0 or true) that fits int64.
Id = Annotated[int, Field(strict=True, ge=1, le=INT64_MAX)]


# Every string of a request is refused past MAX_STRING_CHARS, before any lookup: a
# vocabulary lookup may cost memory in proportion to the longest value it is given.
BoundedStr = Annotated[StrictStr, Field(max_length=MAX_STRING_CHARS)]


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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class UserFeatures(_Strict):
    """A user described by side features instead of (or beside) an id; an absent
    feature is scored through its out-of-vocabulary row."""

    user_gender: StrictInt | None = Field(None, description="1 male, 0 female", examples=[1])
    bucketized_user_age: StrictInt | None = Field(
        None, description="the lower edge of the age bucket: 1, 18, 25, 35, 45, 50 or 56", examples=[25]
    )
    user_zip_code: BoundedStr | None = Field(None, examples=["94043"])
    user_occupation_text: BoundedStr | None = Field(None, examples=["engineer"])


class RankRequest(_Strict):
    """`POST /rank`: score candidate movies for one user and return the best."""

    user_id: Id | None = Field(None, description="a MovieLens user id", examples=[42])
    user: UserFeatures | None = Field(
        None, description="the user's features; they override the catalog's for `user_id`"
    )
    candidates: Annotated[list[Id], Field(min_length=1, max_length=MAX_ROWS)] | None = Field(
        None, description="movie ids to rank (default: every catalog movie the user has not rated)"
    )
    top: Annotated[int, Field(strict=True, ge=1)] | None = Field(
        None, description="how many items to return (default 10)"
    )


class RankedItem(BaseModel):
    rank: int = Field(description="1 for the best")
    movie_id: int
    score: float = Field(description="the predicted rating")
    title: str | None = Field(None, description="when the catalog knows the movie")


class RankResponse(BaseModel):
    user_id: int | None
    candidates: int = Field(description="how many movies were scored")
    items: list[RankedItem]
    unknown: dict[str, list[int | str]] = Field(
        description="feature -> the given values the model does not know, scored through the OOV row"
    )
    missing: list[str] = Field(description="features nobody gave, scored through the OOV row")


class PredictRequest(_Strict):
    """`POST /predict`: score explicit rows of raw feature values."""

    rows: Annotated[list[dict[BoundedStr, FeatureValue]], Field(min_length=1, max_length=MAX_ROWS)] = Field(
        description="one object per row with every feature of the model",
        examples=[[{"movie_id": 50, "user_id": 42, "user_gender": 1, "bucketized_user_age": 25,
                    "user_zip_code": "94043", "user_occupation_text": "engineer"}]],
    )  # fmt: skip


class PredictResponse(BaseModel):
    scores: list[float] = Field(description="one predicted rating per row, in order")
    unknown: dict[str, list[int | str]]


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
