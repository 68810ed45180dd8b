"""REDCap's API (``POST /api/``) for PyCap, REDCapR and redcapAPI (``api``)."""

from edc.routes.redcap import api

__all__ = ["api"]
