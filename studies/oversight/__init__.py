"""Oversight for the data security office: the clause → feature → test table (conformance) and
the live Appendix F self-check (selfcheck)."""
