"""Table 6 record-level transforms: what a data manager sees after each call."""

import datetime as dt

import polars as pl
import pytest

from deid import transforms as T
from deid.errors import (
    ColumnTypeError,
    DeidError,
    InvalidValueError,
    MissingColumnError,
    SecretError,
)

SECRET = b"0123456789abcdef-project-secret"


def test_direct_identifiers_are_dropped_or_blanked():
    df = pl.DataFrame({"name": ["张三", "李四"], "phone": ["13812345678", None], "sbp": [120, 135]})
    dropped = T.drop_identifiers(df, ["name", "phone"])
    assert dropped.columns == ["sbp"]
    blanked = T.drop_identifiers(df, ["name", "phone"], mode="blank")
    assert blanked.columns == ["name", "phone", "sbp"]
    assert blanked["name"].null_count() == 2 and blanked["phone"].null_count() == 2
    assert blanked["sbp"].to_list() == [120, 135]


def test_unknown_identifier_column_names_column_and_rule():
    df = pl.DataFrame({"a": [1]})
    with pytest.raises(MissingColumnError) as e:
        T.drop_identifiers(df, ["email"])
    assert "email" in str(e.value) and "direct-identifier" in str(e.value)
    assert isinstance(e.value, ValueError)


def test_birth_date_becomes_age_at_reference_date_and_birth_date_is_gone():
    df = pl.DataFrame({"dob": [dt.date(1980, 5, 3), dt.date(1980, 5, 4), dt.date(2000, 2, 29)]})
    out = T.birth_date_to_age(df, "dob", dt.date(2020, 5, 3))
    assert out.columns == ["age"]
    assert out["age"].to_list() == [40, 39, 20]


def test_birth_date_age_at_a_per_row_event_date():
    df = pl.DataFrame({"dob": ["1970-01-15", "1990-12-31"], "enrol": ["2020-01-14", "2021-01-01"]})
    out = T.birth_date_to_age(df, "dob", "enrol")
    assert out["age"].to_list() == [49, 30]


def test_birth_date_after_reference_is_refused():
    df = pl.DataFrame({"dob": [dt.date(2030, 1, 1)]})
    with pytest.raises(InvalidValueError, match="dob"):
        T.birth_date_to_age(df, "dob", dt.date(2020, 1, 1))


def test_birth_date_to_year_only():
    df = pl.DataFrame({"dob": [dt.date(1980, 5, 3)]})
    assert T.birth_date_to_year(df, "dob")["dob"].to_list() == [1980]


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (0, "<25"),
        (24, "<25"),
        (25, "25-29"),
        (29, "25-29"),
        (30, "30-34"),
        (84, "80-84"),
        (85, "85-89"),
        (89, "85-89"),
        (90, ">89"),
        (104, ">89"),
    ],
)
def test_table6_age_bands(age, band):
    assert T.age_band_label(age, 1) == band


def test_ages_above_89_are_never_finer_at_any_level():
    for level in range(0, T.AGE_BAND_LEVELS):
        assert {T.age_band_label(a, level) for a in range(90, 120)} == {">89"}


def test_coarser_age_levels_nest_in_finer_ones():
    for level in range(1, T.AGE_BAND_LEVELS + 1):
        parent: dict[str, str] = {}
        for a in range(0, 120):
            fine, coarse = T.age_band_label(a, level - 1), T.age_band_label(a, level)
            assert parent.setdefault(fine, coarse) == coarse


def test_age_band_column():
    df = pl.DataFrame({"age": [24, 38, 91, None]})
    assert T.age_band(df, "age")["age"].to_list() == ["<25", "35-39", ">89", None]
    assert T.age_band(df, "age", level=4)["age"].to_list() == ["<=89", "<=89", ">89", None]
    with pytest.raises(ColumnTypeError, match="age-band"):
        T.age_band(pl.DataFrame({"age": ["38"]}), "age")


def test_dates_to_year_and_year_month():
    df = pl.DataFrame({"adm": [dt.date(2018, 1, 1), None]})
    assert T.date_to_year(df, "adm")["adm"].to_list() == [2018, None]
    assert T.date_to_year_month(df, "adm")["adm"].to_list() == ["2018-01", None]


def test_date_text_that_is_not_iso_is_refused_with_column():
    with pytest.raises(InvalidValueError) as e:
        T.date_to_year(pl.DataFrame({"adm": ["01/02/2018"]}), "adm")
    assert "adm" in str(e.value) and "date-generalise" in str(e.value)


def test_date_shift_keeps_length_of_stay_exact_and_is_stable_per_project():
    df = pl.DataFrame(
        {
            "adm": [dt.date(2018, 1, 1), dt.date(2019, 6, 30)],
            "dis": [dt.date(2018, 4, 1), dt.date(2019, 7, 2)],
        }
    )
    a = T.shift_dates(df, ["adm", "dis"], project_id="P1", secret=SECRET)
    b = T.shift_dates(df, ["adm", "dis"], project_id="P1", secret=SECRET)
    assert a.equals(b)
    off = T.project_date_offset("P1", SECRET)
    assert off != 0 and -365 <= off <= 365
    assert (a["adm"] - df["adm"]).dt.total_days().to_list() == [off, off]
    assert (a["dis"] - a["adm"]).dt.total_days().to_list() == [90, 2]
    assert a["adm"].to_list() != df["adm"].to_list()


def test_date_offset_differs_between_projects_and_secrets():
    offs = {T.project_date_offset(f"P{i}", SECRET) for i in range(20)}
    assert len(offs) > 15
    assert T.project_date_offset("P1", SECRET) != T.project_date_offset("P1", SECRET + b"x") or (
        T.project_date_offset("P2", SECRET) != T.project_date_offset("P2", SECRET + b"x")
    )


def test_table6_example_offset_of_100_days():
    # 2018-01-01 + 100 = 2018-04-11, 2018-04-01 + 100 = 2018-07-10 (Table 6)
    df = pl.DataFrame({"adm": [dt.date(2018, 1, 1)], "dis": [dt.date(2018, 4, 1)]})
    shifted = df.with_columns(pl.col("adm", "dis") + pl.duration(days=100))
    assert shifted.row(0) == (dt.date(2018, 4, 11), dt.date(2018, 7, 10))


def test_per_subject_offsets_keep_intervals_within_subject():
    df = pl.DataFrame(
        {
            "sid": ["a", "a", "b"],
            "d": [dt.date(2020, 1, 1), dt.date(2020, 1, 11), dt.date(2020, 1, 1)],
        }
    )
    out = T.shift_dates(df, "d", project_id="P1", secret=SECRET, subject_column="sid")
    assert (out["d"][1] - out["d"][0]).days == 10
    again = T.shift_dates(df, "d", project_id="P1", secret=SECRET, subject_column="sid")
    assert out.equals(again)


def test_weak_secret_is_refused():
    with pytest.raises(SecretError):
        T.project_date_offset("P1", b"short")
    with pytest.raises(SecretError):
        T.keyed_token("110", project_id="P1", secret="tooshort")


def test_postcode_truncation():
    df = pl.DataFrame({"zip": ["100080", None]})
    assert T.truncate_postcode(df, "zip")["zip"].to_list() == ["100***", None]
    assert T.truncate_postcode(df, "zip", masked_digits=2)["zip"].to_list() == ["1000**", None]
    assert T.postcode_label("100080", 4) == "10****"
    with pytest.raises(InvalidValueError, match="zip"):
        T.truncate_postcode(pl.DataFrame({"zip": ["10008"]}), "zip")


@pytest.mark.parametrize(
    ("address", "kept"),
    [
        ("广东省广州市天河区天河路385号", "广东省广州市天河区"),
        ("北京市海淀区中关村大街27号", "北京市海淀区"),
        ("上海市浦东新区张江镇祖冲之路", "上海市浦东新区"),
        ("新疆维吾尔自治区乌鲁木齐市天山区解放北路", "新疆维吾尔自治区乌鲁木齐市天山区"),
        ("浙江省杭州市西湖区文三路90号", "浙江省杭州市西湖区"),
        ("湖南省长沙市宁乡县城郊乡", "湖南省长沙市宁乡县"),
    ],
)
def test_address_keeps_province_city_county_only(address, kept):
    assert T.truncate_address(address) == kept


def test_address_column():
    df = pl.DataFrame({"addr": ["北京市海淀区中关村大街27号", None]})
    assert T.address_to_county(df, "addr")["addr"].to_list() == ["北京市海淀区", None]


def test_keyed_tokens_link_within_project_not_across():
    df = pl.DataFrame({"idno": ["110105194912310021", "110105194912310021 ", "320101199001011234"]})
    p1 = T.pseudonymise(df, "idno", project_id="P1", secret=SECRET)["idno"].to_list()
    p2 = T.pseudonymise(df, "idno", project_id="P2", secret=SECRET)["idno"].to_list()
    assert p1[0] == p1[1] != p1[2]
    assert p2[0] == p2[1] != p2[2]
    assert set(p1).isdisjoint(p2)
    assert all(len(t) == 32 and "110105" not in t for t in p1)
    assert T.keyed_token("x", project_id="P1", secret=SECRET) == T.keyed_token(
        "x", project_id="P1", secret=SECRET
    )
    assert T.keyed_token("x", project_id="P1", secret=SECRET) != T.keyed_token(
        "x", project_id="P1", secret=SECRET + b"!"
    )


def test_errors_are_value_errors():
    assert issubclass(DeidError, ValueError)
