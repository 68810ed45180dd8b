"""Routes of the subjects domain: its JSON API (``api``) and its pages (``pages``)."""

from edc.routes.subjects import api, pages, requests

__all__ = ["api", "pages", "requests"]
