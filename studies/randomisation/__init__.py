"""Randomisation (permuted blocks or an imported list), blinding and unblinding (SPEC §6)."""
