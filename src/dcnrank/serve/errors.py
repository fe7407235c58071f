"""`RequestError`: a request that is well-formed JSON of the right types, but asks for
something this model or catalog cannot do; the service answers it with HTTP 422."""

from __future__ import annotations

__all__ = ["RequestError"]


class RequestError(ValueError):
    """A problem with one field of a request.

    Args:
        field: where in the request, as a path (`"candidates"`, `"rows[3].movie_id"`,
            `"user.user_zip_code"`).
        message: what is wrong, with the received value echoed.

    Example:
        >>> str(RequestError("top", "must be a positive int. Received: top=0"))
        'top: must be a positive int. Received: top=0'
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
