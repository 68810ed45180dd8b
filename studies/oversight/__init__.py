"""Oversight for the data security office: abnormal-access rules and their flags (models,
service), the clause → feature → test table (conformance) and the live Appendix F self-check
(selfcheck)."""
