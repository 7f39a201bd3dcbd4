"""Request-size limits answered like any other validation error (422 naming the field)."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError


class TooManyImages(RequestValidationError):
    pass


def check_image_count(count: int, limit: int, field: str = "images") -> None:
    if count > limit:
        raise TooManyImages(
            [{"loc": ("body", field), "msg": f"at most {limit} images per request, got {count}", "type": "too_long"}]
        )
