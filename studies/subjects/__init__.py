"""Subjects: known everywhere by a random subject code; identity lives only in the code index."""
