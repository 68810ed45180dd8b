"""Accounts, roles with their scopes, server-side sessions, and the permission table."""
