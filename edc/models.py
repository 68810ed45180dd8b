"""Imports every table module so that ``SQLModel.metadata`` is complete (Alembic, tests)."""

from sqlmodel import SQLModel

import audit_trail.models  # noqa: F401
import studies.accounts.models  # noqa: F401
import studies.consent.models  # noqa: F401
import studies.entry.models  # noqa: F401
import studies.ethics.models  # noqa: F401
import studies.extracts.models  # noqa: F401
import studies.forms.models  # noqa: F401
import studies.jobs.models  # noqa: F401
import studies.locks.models  # noqa: F401
import studies.oversight.models  # noqa: F401
import studies.randomisation.models  # noqa: F401
import studies.registry.models  # noqa: F401
import studies.retention.models  # noqa: F401
import studies.signoff.models  # noqa: F401
import studies.subjects.models  # noqa: F401

metadata = SQLModel.metadata
