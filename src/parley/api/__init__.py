"""The HTTP layer: ``create_app(settings)`` builds a FastAPI app; nothing at import."""

from parley.api.app import create_app

__all__ = ["create_app"]
