"""Errors the services raise for the API to answer."""

from __future__ import annotations


class InvalidField(ValueError):
    """A request field with a value the service cannot use (answered 422 naming `field`)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
