"""The one refusal the imaging code raises; the gateway renders it as a 400 naming the content part."""

from __future__ import annotations


class ImageRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[ImageRefused], tuple[str, str]]:
        # Raised in image worker processes and pickled back to the gateway.
        return ImageRefused, (self.code, self.message)
