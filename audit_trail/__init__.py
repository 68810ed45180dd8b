"""The append-only ledger: entries, hash chain, RFC 9162 Merkle tree, signed checkpoints.

Imports nothing from ``studies``, ``edc`` or ``deid``.
"""
