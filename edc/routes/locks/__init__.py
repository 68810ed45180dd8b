"""Routes of the locks domain: its JSON API (``api``) and its pages (``pages``)."""

from edc.routes.locks import api, pages

__all__ = ["api", "pages"]
