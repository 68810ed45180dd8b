"""Routes of the job queue: its JSON API (``api``) and its page (``pages``)."""

from edc.routes.jobs import api, pages

__all__ = ["api", "pages"]
