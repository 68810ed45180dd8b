"""Database lock and unlock with multi-party signed sign-off (§11.3.4.7 a, SPEC §6)."""
