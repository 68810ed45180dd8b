"""Free text: resident ID numbers (GB 11643 check digit), phones, e-mails and names masked."""

import polars as pl

from deid.freetext import id_check_char, is_valid_resident_id, scrub_column, scrub_text


def _valid_id(first17: str) -> str:
    return first17 + id_check_char(first17)


def test_gb11643_check_character():
    # Known example from GB 11643-1999: 11010519491231002X
    assert is_valid_resident_id("11010519491231002X")
    assert is_valid_resident_id("11010519491231002x")
    assert not is_valid_resident_id("110105194912310021")
    assert id_check_char("11010519491231002") == "X"


def test_valid_ids_masked_invalid_18_digit_numbers_kept():
    good = _valid_id("44030419850101123")
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    r = scrub_text(f"身份证{good}，样本号{bad}。")
    assert good not in r.text
    assert bad in r.text
    assert r.counts["id_number"] == 1


def test_phones_masked_and_counted():
    text = "手机13812345678，另一个 +86 139-1234-5678，座机010-62345678，剂量12345。"
    r = scrub_text(text)
    assert r.counts["phone"] == 3
    for p in ("13812345678", "139-1234-5678", "62345678"):
        assert p not in r.text
    assert "12345" in r.text


def test_emails_and_names_masked_and_counted():
    r = scrub_text(
        "张三的家属张小明联系 zhang.san@example.com；随访医生Li Wei, li wei again.",
        names=["张三", "张小明", "Li Wei"],
    )
    assert r.counts == {"id_number": 0, "phone": 0, "email": 1, "name": 4}
    for s in ("张三", "张小明", "zhang.san@example.com", "Li Wei", "li wei"):
        assert s not in r.text


def test_text_without_identifiers_is_unchanged():
    t = "血压120/80 mmHg，复查肌酐，2020年随访。"
    r = scrub_text(t, names=["王五"])
    assert r.text == t and sum(r.counts.values()) == 0


def test_scrub_column_totals():
    good = _valid_id("11010519491231002")
    df = pl.DataFrame({"note": [f"ID {good} 电话13812345678", None, "王五 a@b.cn"]})
    out, counts = scrub_column(df, "note", names=["王五"])
    assert counts == {"id_number": 1, "phone": 1, "email": 1, "name": 1}
    assert out["note"][1] is None
    assert good not in out["note"][0] and "王五" not in out["note"][2]
