"""Hypothesis fuzzing of every pure parser: garbage in, only typed errors (or clean rows) out."""

from __future__ import annotations

import json

import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ecodemo.errors import EcodemoError
from ecodemo.sensors import files, mqtt, open_meteo, opendatasoft
from ecodemo.sensors.params import FilesParams, MqttParams, OpendatasoftParams

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                           max_leaves=20)
ODS = OpendatasoftParams(base_url="http://x", dataset="d", timestamp_field="date",
                         value_field="sum_counts", series_field="id_compteur", series="A")
record = st.fixed_dictionaries({}, optional={"date": json_values, "sum_counts": json_values,
                                             "id_compteur": json_values | st.just("A"),
                                             "other": json_values})
ods_payload = json_values | st.fixed_dictionaries(
    {"total_count": json_values | st.integers(0, 10), "results": json_values
     | st.lists(record, max_size=6)})


@settings(max_examples=300, deadline=None)
@given(ods_payload)
@example([{"\n": None}])  # found in CI: a field name with a newline broke the one-line message
def test_opendatasoft_parsers_raise_only_typed_errors(payload) -> None:
    try:
        rows, _ = opendatasoft.records_of(payload, source="fuzz")
        table, nulls = opendatasoft.parse_records(rows, ODS, sensor_id="s", unit="bicycles/h",
                                                  source="fuzz")
    except EcodemoError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("fuzz: ")
        return
    assert table.num_rows + nulls <= len(rows)
    assert table.schema.names == ["timestamp", "site_id", "value", "unit"]
    assert all(pa.types.is_string(t) for t in table.schema.types)


hourly = st.dictionaries(
    st.sampled_from(["time", *open_meteo.VARIABLES, "junk"]),
    st.lists(json_scalars | st.sampled_from(["2024-09-02T00:00", "2024-13-40T99:00"]),
             max_size=5) | json_values, max_size=8)
om_payload = json_values | st.fixed_dictionaries(
    {"hourly": hourly | json_values},
    optional={"utc_offset_seconds": json_values | st.integers(-50000, 50000),
              "hourly_units": st.dictionaries(st.sampled_from(list(open_meteo.VARIABLES)),
                                              st.sampled_from(["m/s", "km/h", "°F", "%", "?"]))
              | json_values,
              "error": st.booleans(), "reason": json_values})


@settings(max_examples=300, deadline=None)
@given(om_payload)
def test_open_meteo_parser_raises_only_typed_errors(payload) -> None:
    try:
        frame = open_meteo.parse_hourly(payload, station="st", source="fuzz",
                                        variables=tuple(open_meteo.VARIABLES))
    except EcodemoError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("fuzz: ")
        return
    assert list(frame.columns) == ["station_id", "ts", "variable", "value"]
    assert frame["value"].notna().all()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode())
       | st.lists(st.fixed_dictionaries({}, optional={
           "sensor_id": json_values, "timestamp": json_values, "value": json_values,
           "unit": json_values}), max_size=4).map(lambda v: json.dumps(v).encode()))
def test_mqtt_payload_parser_never_raises(payload) -> None:
    parsed = mqtt.parse_payload(payload, MqttParams(), topic="t")
    for ts, sid, value, _unit in parsed.rows:
        assert all(isinstance(x, str) for x in (ts, sid, value))
    assert all(r.reason for r in parsed.rejected)
    mqtt.rows_to_table(parsed.rows, {})


columns = st.dictionaries(st.sampled_from(["timestamp", "when", "value", "v", "site_id",
                                           "sensor_id", "unit", "x"]),
                          st.lists(json_scalars.filter(lambda v: not isinstance(v, list)),
                                   min_size=3, max_size=3).map(
                                       lambda v: [None if x is None else str(x) for x in v]),
                          min_size=1, max_size=5)
mappings = st.fixed_dictionaries({}, optional={
    "columns": st.dictionaries(st.sampled_from(["timestamp", "value", "sensor_id", "unit"]),
                               st.sampled_from(["when", "v", "x", "nope"]), max_size=3),
    "constants": st.dictionaries(st.sampled_from(["sensor_id", "unit"]),
                                 st.text(max_size=5), max_size=2),
    "timestamp_format": st.sampled_from(["%d/%m/%Y %H:%M", "%Y"]),
    "wide_sensors": st.dictionaries(st.sampled_from(["v", "x", "zz"]), st.text(max_size=4),
                                    max_size=2)})


@settings(max_examples=200, deadline=None)
@given(columns, mappings)
def test_file_mapping_raises_only_typed_errors(cols, mapping) -> None:
    table = pa.table({k: pa.array(v, pa.string()) for k, v in cols.items()})
    p = FilesParams(path="x", **mapping)
    try:
        out = files.map_table(table, p, source="fuzz.csv")
    except EcodemoError as exc:
        assert "\n" not in str(exc) and "fuzz.csv" in str(exc)
        return
    assert out.schema.names == ["timestamp", "site_id", "value", "unit"]
