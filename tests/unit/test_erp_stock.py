"""The ERP stock export parser (connectors/erp_stock.py): pure, no broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shopstream.connectors.erp_stock import (
    DEFAULT_LOCATION,
    BadQuantity,
    DuplicateRow,
    ErpFileError,
    MissingSku,
    RowError,
    StockExport,
    WrongColumnCount,
    detect_delimiter,
    parse_stock_export,
)
from shopstream.connectors.ingest import parse_as_of
from shopstream.schemas.models import StockSnapshot

AS_OF = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
RECORDED = datetime(2026, 11, 23, 6, 5, tzinfo=UTC)


def parse(data: bytes | str, as_of: datetime = AS_OF) -> list[StockSnapshot | RowError]:
    return list(parse_stock_export(data, as_of=as_of, recorded_at=RECORDED))


def snapshots(items: list[StockSnapshot | RowError]) -> list[StockSnapshot]:
    return [i for i in items if isinstance(i, StockSnapshot)]


def errors(items: list[StockSnapshot | RowError]) -> list[RowError]:
    return [i for i in items if isinstance(i, RowError)]


def figures(items: list[StockSnapshot | RowError]) -> list[tuple[str, str, int, int | None, int | None]]:
    return [(s.sku, s.location, s.on_hand, s.safety_stock, s.incoming) for s in snapshots(items)]


# ------------------------------------------------------------------------------------------ valid files


def test_comma_file_with_all_columns() -> None:
    items = parse("sku,on_hand,location,safety_stock,incoming\nA-1,10,WH1,2,5\nB-2,0,WH2,,\n")
    assert figures(items) == [("A-1", "WH1", 10, 2, 5), ("B-2", "WH2", 0, None, None)]
    assert errors(items) == []
    first = snapshots(items)[0]
    assert first.as_of == AS_OF
    assert first.meta.event_type == "StockSnapshot" and first.meta.source == "erp"
    assert first.meta.occurred_at == AS_OF and first.meta.recorded_at == RECORDED


def test_semicolon_file_with_decimal_comma_elsewhere_and_crlf() -> None:
    # Extra columns with commas inside (a German price) must not fool the delimiter detection.
    text = "Artikelname;sku;on_hand;Preis\r\nHemd, blau;H-1;7;19,90\r\nHose;H-2;3;49,00\r\n"
    items = parse(text)
    assert figures(items) == [("H-1", DEFAULT_LOCATION, 7, None, None), ("H-2", DEFAULT_LOCATION, 3, None, None)]


def test_tab_delimited() -> None:
    assert figures(parse("sku\ton_hand\nA\t1\n")) == [("A", DEFAULT_LOCATION, 1, None, None)]


def test_utf8_bom_and_header_case_and_whitespace() -> None:
    data = "\ufeff SKU ; On_Hand ;LOCATION ; Safety_Stock;INCOMING \nÄrmel-1; 4 ;Lager Süd; 1 ;+2\n".encode()
    assert figures(parse(data)) == [("Ärmel-1", "Lager Süd", 4, 1, 2)]


def test_bom_in_str_input_is_dropped() -> None:
    assert figures(parse("\ufeffsku,on_hand\nA,1\n")) == [("A", DEFAULT_LOCATION, 1, None, None)]


def test_optional_columns_absent_or_empty() -> None:
    items = parse("on_hand,sku\n5,A\n")
    assert figures(items) == [("A", DEFAULT_LOCATION, 5, None, None)]
    items = parse("sku,on_hand,location\nA,5,\n")
    assert figures(items) == [("A", DEFAULT_LOCATION, 5, None, None)]


def test_blank_and_all_empty_rows_are_skipped() -> None:
    items = parse("sku;on_hand;location\n\nA;1;W\n;;\n  \nB;2;W\n;;\n")
    assert figures(items) == [("A", "W", 1, None, None), ("B", "W", 2, None, None)]
    assert errors(items) == []


def test_same_sku_at_two_locations_is_fine() -> None:
    items = parse("sku,on_hand,location\nA,1,W1\nA,2,W2\n")
    assert figures(items) == [("A", "W1", 1, None, None), ("A", "W2", 2, None, None)]


def test_quoted_fields() -> None:
    items = parse('sku;on_hand;note\n"A;1";3;"says ""hi"""\n')
    assert figures(items) == [("A;1", DEFAULT_LOCATION, 3, None, None)]


# ------------------------------------------------------------------------------------------ invalid rows


def test_every_invalid_row_kind_with_its_line_number() -> None:
    text = ("sku,on_hand,location,safety_stock,incoming\n"  # 1
            "OK-1,1,W,,\n"                                   # 2
            ",5,W,,\n"                                       # 3 missing SKU
            "  ,5,W,,\n"                                     # 4 blank SKU
            "Q-1,abc,W,,\n"                                  # 5 non-integer on_hand
            "Q-2,1.5,W,,\n"                                  # 6 decimal
            "Q-3,-3,W,,\n"                                   # 7 negative
            "Q-4,,W,,\n"                                     # 8 missing on_hand
            "Q-5,1,W,x,\n"                                   # 9 bad safety_stock
            "Q-6,1,W,,-1\n"                                  # 10 negative incoming
            "Q-7,99999999999,W,,\n"                          # 11 beyond Avro int
            "C-1,1,W\n"                                      # 12 too few columns
            "C-2,1,W,,,extra\n"                              # 13 too many columns
            "OK-2,2,W,1,1\n")                                # 14
    items = parse(text)
    assert [s.sku for s in snapshots(items)] == ["OK-1", "OK-2"]
    got = [(e.line_number, e.kind, e.raw_line) for e in errors(items)]
    assert got == [
        (3, MissingSku, ",5,W,,"), (4, MissingSku, "  ,5,W,,"),
        (5, BadQuantity, "Q-1,abc,W,,"), (6, BadQuantity, "Q-2,1.5,W,,"), (7, BadQuantity, "Q-3,-3,W,,"),
        (8, BadQuantity, "Q-4,,W,,"), (9, BadQuantity, "Q-5,1,W,x,"), (10, BadQuantity, "Q-6,1,W,,-1"),
        (11, BadQuantity, "Q-7,99999999999,W,,"),
        (12, WrongColumnCount, "C-1,1,W"), (13, WrongColumnCount, "C-2,1,W,,,extra"),
    ]
    reasons = {e.line_number: e.reason for e in errors(items)}
    assert reasons[3] == "missing SKU"
    assert reasons[5] == "on_hand is not a whole number: 'abc'"
    assert reasons[7] == "on_hand is negative: '-3'"
    assert reasons[8] == "missing on_hand"
    assert reasons[9] == "safety_stock is not a whole number: 'x'"
    assert reasons[10] == "incoming is negative: '-1'"
    assert reasons[11] == "on_hand is too large: '99999999999'"
    assert reasons[12] == "expected 5 columns, found 3"
    assert reasons[13] == "expected 5 columns, found 6"
    assert str(errors(items)[2].exception()) == "line 5: on_hand is not a whole number: 'abc'"


def test_duplicate_names_both_lines_and_only_the_second_is_rejected() -> None:
    items = parse("sku;on_hand;location\nA;1;W1\nB;2;W1\nA;9;W1\n")
    assert figures(items) == [("A", "W1", 1, None, None), ("B", "W1", 2, None, None)]
    (dup,) = errors(items)
    assert dup.kind is DuplicateRow and dup.line_number == 4 and dup.raw_line == "A;9;W1"
    assert dup.reason == "duplicate SKU 'A' at location 'W1': first seen on line 2"


def test_duplicate_with_default_location() -> None:
    items = parse("sku,on_hand,location\nA,1,\nA,2,default\n")
    (dup,) = errors(items)
    assert dup.line_number == 3 and "first seen on line 2" in dup.reason


def test_duplicate_of_a_rejected_row_is_rejected_too() -> None:
    # Two figures for one SKU+location: neither is guessed to be the right one.
    items = parse("sku,on_hand\nA,-1\nA,5\n")
    assert snapshots(items) == []
    assert [(e.line_number, e.kind) for e in errors(items)] == [(2, BadQuantity), (3, DuplicateRow)]
    assert "first seen on line 2" in errors(items)[1].reason


def test_line_numbers_count_physical_lines_including_blank_and_multiline_fields() -> None:
    items = parse('sku,on_hand,note\n\nA,1,"two\nlines"\nB,x,\n')
    assert figures(items) == [("A", DEFAULT_LOCATION, 1, None, None)]
    (bad,) = errors(items)
    assert bad.line_number == 5 and bad.raw_line == "B,x,"


def test_raw_line_keeps_the_row_as_written() -> None:
    (bad,) = errors(parse('sku;on_hand\r\n"Ä-1" ; -2 \r\n'))
    assert bad.raw_line == '"Ä-1" ; -2 ' and bad.line_number == 2 and bad.sku == "Ä-1"


# ------------------------------------------------------------------------------------------ file level


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty file"),
    (b"\n\n", "empty file"),
    (b"sku,quantity\nA,1\n", "lacks required column(s) on_hand"),
    (b"article;stock\nA;1\n", "lacks required column(s) sku, on_hand"),
    (b"SKU|ON_HAND\nA|1\n", "lacks required column(s)"),
    (b"sku,on_hand,SKU\nA,1,B\n", "sku more than once"),
    (b"sku,on_hand\n\xff\xfeA,1\n", "not UTF-8"),
])
def test_file_level_errors(data: bytes, message: str) -> None:
    with pytest.raises(ErpFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(data)


def test_file_level_error_is_raised_before_iteration() -> None:
    with pytest.raises(ErpFileError):
        parse_stock_export(b"foo,bar\n1,2\n", as_of=AS_OF)  # no list(): the header is checked at once


def test_missing_column_message_lists_what_was_found() -> None:
    with pytest.raises(ErpFileError) as info:
        detect_delimiter("Artikel;Bestand;Lager")
    assert "'artikel', 'bestand', 'lager'" in str(info.value)


def test_naive_as_of_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        StockExport("sku,on_hand\nA,1\n", as_of=datetime(2026, 11, 23, 6, 0))


def test_delimiter_detection() -> None:
    assert detect_delimiter("sku,on_hand") == ","
    assert detect_delimiter("sku;on_hand") == ";"
    assert detect_delimiter("Beschreibung, lang;sku;on_hand") == ";"
    assert detect_delimiter("x;y,sku,on_hand") == ","


# ------------------------------------------------------------------------------------------ event ids


def test_event_ids_are_deterministic_per_sku_location_and_as_of() -> None:
    text = "sku,on_hand,location\nA,1,W1\nA,2,W2\nB,3,W1\n"
    first = snapshots(parse(text))
    again = snapshots(list(parse_stock_export(text, as_of=AS_OF, recorded_at=RECORDED + timedelta(hours=1))))
    assert [s.meta.event_id for s in first] == [s.meta.event_id for s in again]
    assert len({s.meta.event_id for s in first}) == 3
    # The same instant written in another zone is the same snapshot.
    cet = AS_OF.astimezone(timezone(timedelta(hours=1)))
    assert [s.meta.event_id for s in snapshots(parse(text, as_of=cet))] == [s.meta.event_id for s in first]
    # Different figures, same identity: same id (a correction needs a later as-of).
    assert snapshots(parse("sku,on_hand,location\nA,7,W1\n"))[0].meta.event_id == first[0].meta.event_id
    later = snapshots(parse(text, as_of=AS_OF + timedelta(minutes=1)))
    assert not {s.meta.event_id for s in later} & {s.meta.event_id for s in first}
    # Reordering rows changes nothing either.
    shuffled = snapshots(parse("sku,on_hand,location\nB,3,W1\nA,2,W2\nA,1,W1\n"))
    assert sorted(s.meta.event_id for s in shuffled) == sorted(s.meta.event_id for s in first)


def test_as_of_is_normalized_to_utc_millis() -> None:
    (snap,) = snapshots(parse("sku,on_hand\nA,1\n", as_of=datetime(2026, 1, 1, 7, 0, 0, 123456,
                                                                   tzinfo=timezone(timedelta(hours=1)))))
    assert snap.as_of == datetime(2026, 1, 1, 6, 0, 0, 123000, tzinfo=UTC)
    assert snap.meta.correlation_id == "erp:stock:2026-01-01T06:00:00.123000+00:00"


# ------------------------------------------------------------------------------------------ --as-of


def test_parse_as_of() -> None:
    assert parse_as_of("2026-11-23T06:00:00Z") == AS_OF
    assert parse_as_of("2026-11-23T07:00:00+01:00") == AS_OF
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_as_of(None, now=now) == now
    assert parse_as_of(None).tzinfo is not None
    with pytest.raises(ValueError, match="no time zone"):
        parse_as_of("2026-11-23T06:00:00")
    with pytest.raises(ValueError, match="not an ISO-8601 time"):
        parse_as_of("yesterday")
    with pytest.raises(ValueError, match="out of range"):
        parse_as_of("0001-01-01T00:00:00+01:00")
    # A typo years ahead would make every later count of those SKUs stale: refused beyond the skew.
    with pytest.raises(ValueError, match="ahead of our clock"):
        parse_as_of("2062-11-23T06:00:00Z", now=now, max_future_skew_s=600)
    assert parse_as_of("2026-01-01T00:09:00Z", now=now, max_future_skew_s=600) > now


def test_plain_quoted_and_non_ascii_lines_read_alike() -> None:
    # Plain ASCII lines take a short path, lines with quotes go through csv.reader, non-ASCII ones
    # through the full checks: the same rules either way, duplicates found across them.
    items = parse('sku,on_hand,location,safety_stock,incoming\n'
                  'A, 1 ,W,2,\n'            # 2
                  '"B",2,W,,"3"\n'          # 3
                  'Ä,3, W ,,\n'             # 4
                  'A,9,"W",,\n'             # 5 duplicate of line 2
                  '"Ä",4,W,,\n'             # 6 duplicate of line 4
                  'C,1.5,W,,\n'             # 7 not a whole number
                  ' ,,,,\n'                 # 8 blank
                  'D,0012,,+1,\n')          # 9 leading zeros and a plus sign (full checks)
    assert figures(items) == [("A", "W", 1, 2, None), ("B", "W", 2, None, 3), ("Ä", "W", 3, None, None),
                              ("D", DEFAULT_LOCATION, 12, 1, None)]
    assert [(e.line_number, e.kind) for e in errors(items)] == [(5, DuplicateRow), (6, DuplicateRow),
                                                                 (7, BadQuantity)]
    assert "first seen on line 2" in errors(items)[0].reason and "first seen on line 4" in errors(items)[1].reason


# ----------------------------------------------------------------------------------- hostile files


def _split(items: list[StockSnapshot | RowError]) -> tuple[list[StockSnapshot], list[RowError]]:
    return ([i for i in items if isinstance(i, StockSnapshot)], [i for i in items if isinstance(i, RowError)])


@pytest.mark.parametrize("data", [
    "\ufeffsku,on_hand\nA,1\nB,2\n".encode(),  # BOM
    b"sku;on_hand\nA;1\nB;2\n",  # semicolons
    b"sku\ton_hand\nA\t1\nB\t2\n",  # tabs
    b"sku,on_hand\r\nA,1\r\nB,2\r\n",  # CRLF
])
def test_bom_delimiters_and_crlf_read_alike(data: bytes) -> None:
    ok, bad = _split(parse(data))
    assert [(s.sku, s.on_hand) for s in ok] == [("A", 1), ("B", 2)] and bad == []


def test_an_unterminated_quote_does_not_swallow_the_rows_after_it() -> None:
    rows = b"".join(b"S%d,%d\n" % (i, i) for i in range(5000))
    ok, bad = _split(parse(b'sku,on_hand\n"A,1\n' + rows))
    assert len(ok) == 5000 and ok[0].sku == "S0" and ok[-1].sku == "S4999"
    assert [(e.line_number, e.reason) for e in bad] == [(2, 'unterminated quote (no closing " within 20 lines)')]
    # A quoted field over a few lines is still one field.
    ok, bad = _split(parse(b'sku,on_hand,note\nA,1,"two\nlines"\nB,2,x\n'))
    assert [s.sku for s in ok] == ["A", "B"] and bad == []


def test_a_huge_line_full_width_digits_and_a_long_sku_are_rejected_rows() -> None:
    data = ("sku,on_hand\n" + "X" * 200 * 1024 + ",1\nA,\uff11\uff12\n" + "S" * 300 + ",1\nB,2\n").encode()
    ok, bad = _split(parse(data))
    assert [s.sku for s in ok] == ["B"]
    assert [e.line_number for e in bad] == [2, 3, 4]
    assert "field larger than field limit" in bad[0].reason
    assert "not a whole number" in bad[1].reason
    assert "longer than 255" in bad[2].reason
