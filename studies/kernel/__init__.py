"""The kernel under every domain: what all of them share, importing no domain.

- ``ids`` — row identifiers (``new_id``);
- ``actor`` — the acting user (:class:`Actor`), ``require`` (deny by default), separation of
  duties;
- ``roles`` — roles, permissions and the one role → permission grant table, the signer sets;
- ``errors`` — the typed errors every domain raises (rendered by ``edc/errors.py``);
- ``events`` — every action the ledger records, by name;
- ``models`` — the mixins of tables (``IdTable``: the UUID key; ``CreatedAt``).
"""
