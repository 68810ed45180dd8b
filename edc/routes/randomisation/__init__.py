"""Routes of the randomisation domain: its JSON API (``api``) and its pages (``pages``)."""

from edc.routes.randomisation import api, pages

__all__ = ["api", "pages"]
