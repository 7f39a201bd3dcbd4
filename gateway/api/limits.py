"""Request-size limits inside a route: more images than IMGSEL_MAX_IMAGES_PER_REQUEST is a 413 naming the limit and
the field (gateway.api.errors answers it). The body-size limit is the middleware in gateway.api.body_limit."""

from __future__ import annotations


class TooManyImages(Exception):
    def __init__(self, field: str, count: int, limit: int):
        super().__init__(f"{field}: at most {limit} images per request, got {count} (IMGSEL_MAX_IMAGES_PER_REQUEST)")
        self.field = field
        self.count = count
        self.limit = limit


def check_image_count(count: int, limit: int, field: str = "images") -> None:
    if count > limit:
        raise TooManyImages(field, count, limit)
