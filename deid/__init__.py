"""Pure de-identification library (GB/T 39725-2020 §10.2, Table 6, Appendix G, §11.4.2.4).

Works on :class:`polars.DataFrame` tables only - no database, no web, no imports from the rest
of the EDC. Modules:

* :mod:`deid.transforms` - Table 6 record transforms (drop/blank identifiers, birth date -> age
  or year, age bands, dates to year / year-month / secret shift, postcodes, addresses, keyed
  tokens);
* :mod:`deid.freetext` - mask ID and record numbers, phones, e-mails, known names and Chinese
  and English personal names found in general in free text;
* :mod:`deid.hierarchy` - generalisation hierarchies (ARX CSV, tables, functions; age, postcode,
  date);
* :mod:`deid.kanon` - optimal k-anonymity / distinct l-diversity lattice search;
* :mod:`deid.risk` - re-identification risk report;
* :mod:`deid.puf` - aggregates with primary and complementary cell suppression;
* :mod:`deid.errors` - :class:`DeidError` and its subclasses.

The most used names are re-exported here.
"""

from deid.errors import DeidError, HierarchyError, InfeasibleError, ParameterError
from deid.freetext import scrub_column, scrub_text
from deid.hierarchy import Hierarchy, age_hierarchy, date_hierarchy, postcode_hierarchy
from deid.kanon import AnonymizationResult, anonymize
from deid.puf import PufTable, aggregate
from deid.risk import RiskReport, risk_report
from deid.transforms import (
    address_to_county,
    age_band,
    birth_date_to_age,
    birth_date_to_year,
    date_to_year,
    date_to_year_month,
    drop_identifiers,
    keyed_token,
    project_date_offset,
    pseudonymise,
    shift_dates,
    truncate_postcode,
)

__all__ = [
    "AnonymizationResult",
    "DeidError",
    "Hierarchy",
    "HierarchyError",
    "InfeasibleError",
    "ParameterError",
    "PufTable",
    "RiskReport",
    "address_to_county",
    "age_band",
    "age_hierarchy",
    "aggregate",
    "anonymize",
    "birth_date_to_age",
    "birth_date_to_year",
    "date_hierarchy",
    "date_to_year",
    "date_to_year_month",
    "drop_identifiers",
    "keyed_token",
    "postcode_hierarchy",
    "project_date_offset",
    "pseudonymise",
    "risk_report",
    "scrub_column",
    "scrub_text",
    "shift_dates",
    "truncate_postcode",
]
