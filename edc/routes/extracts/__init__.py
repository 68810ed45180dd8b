"""Routes of the extracts domain: its JSON API (``api``) and its pages (``pages``)."""

from edc.routes.extracts import api, pages

__all__ = ["api", "pages"]
