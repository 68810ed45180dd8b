"""Add or correct entries of the Chinese catalogue: ``python scripts/i18n_add.py FILE`` where
FILE holds pairs of lines, the English message then its Chinese, separated by blank lines."""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parents[1] / "studies/kernel/locale/zh/LC_MESSAGES/messages.po"


def main(path: str) -> None:
    with PO.open("rb") as f:
        catalog = read_po(f, locale="zh_Hans_CN")
    blocks = [b.split("\n") for b in Path(path).read_text().strip().split("\n\n")]
    for block in blocks:
        en, zh = block[0], block[1]
        if en in catalog:
            catalog[en].string = zh
        else:
            catalog.add(en, zh)
    with PO.open("wb") as f:
        write_po(f, catalog, width=100, sort_output=True, include_lineno=False)


if __name__ == "__main__":
    main(sys.argv[1])
