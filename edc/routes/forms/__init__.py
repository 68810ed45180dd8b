"""Routes of the forms domain: its JSON API (``api``) and its pages (``pages``)."""

from edc.routes.forms import api, pages

__all__ = ["api", "pages"]
