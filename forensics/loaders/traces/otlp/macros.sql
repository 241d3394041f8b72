-- DuckDB temp macros shared by the OTLP loaders (JSON and protobuf, which goes through
-- protobuf-JSON). Values arrive as VARCHAR from json_transform: DuckDB renders JSON numbers,
-- booleans and objects as text when the target type is VARCHAR, so one definition covers
-- `"intValue": "5"` and `"intValue": 5`, `"kind": 2` and `"kind": "SPAN_KIND_SERVER"`.

-- base64 with its '=' padding restored (Go RawStdEncoding and friends drop it)
CREATE OR REPLACE TEMP MACRO otlp_b64_pad(x) AS rpad(x, CAST(ceil(length(x) / 4) * 4 AS INTEGER), '=');

-- OTLP id (hex of any case, or protobuf-JSON base64) -> lowercase hex left-padded to `width`.
-- '' / NULL -> NULL; anything else that is neither hex nor base64 is kept as is, so the
-- validation in finalize_spans_sql rejects it with the original text.
CREATE OR REPLACE TEMP MACRO otlp_id(x, width) AS CASE
    WHEN x IS NULL OR trim(x) = '' THEN NULL
    WHEN regexp_full_match(trim(x), '[0-9a-fA-F]+') THEN lpad(lower(trim(x)), width, '0')
    ELSE coalesce(nullif(lower(hex(try(from_base64(otlp_b64_pad(replace(replace(trim(x), '-', '+'), '_', '/')))))), ''), x)
END;

-- unix nanoseconds (string or number, possibly in exponent notation) -> BIGINT; 0 -> NULL
CREATE OR REPLACE TEMP MACRO otlp_ns(x) AS nullif(coalesce(TRY_CAST(x AS BIGINT), TRY_CAST(TRY_CAST(x AS DOUBLE) AS BIGINT)), 0);

-- unix nanoseconds -> TIMESTAMPTZ (UTC, microseconds; negative or zero -> NULL)
CREATE OR REPLACE TEMP MACRO otlp_ts(ns) AS CASE WHEN ns > 0 THEN timezone('UTC', make_timestamp(ns // 1000)) END;

CREATE OR REPLACE TEMP MACRO otlp_iso(ts) AS strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ');

-- number text normalised (5 / "5" -> '5'; 2 / 2.0 -> '2.0' for doubles)
CREATE OR REPLACE TEMP MACRO otlp_int_text(x) AS coalesce(CAST(TRY_CAST(x AS HUGEINT) AS VARCHAR), x);
CREATE OR REPLACE TEMP MACRO otlp_double_text(x) AS coalesce(CAST(TRY_CAST(x AS DOUBLE) AS VARCHAR), x);

-- a scalar AnyValue as a JSON value (nested arrays / kvlists keep their OTLP JSON form)
CREATE OR REPLACE TEMP MACRO otlp_any_json(v) AS CASE
    WHEN v.stringValue IS NOT NULL THEN to_json(v.stringValue)
    WHEN v.intValue IS NOT NULL THEN coalesce(CAST(TRY_CAST(v.intValue AS HUGEINT) AS VARCHAR), to_json(v.intValue))::JSON
    WHEN v.doubleValue IS NOT NULL THEN coalesce(to_json(TRY_CAST(v.doubleValue AS DOUBLE)), to_json(v.doubleValue))
    WHEN v.boolValue IS NOT NULL THEN lower(v.boolValue)::JSON
    WHEN v.bytesValue IS NOT NULL THEN to_json(v.bytesValue)
    WHEN v.arrayValue IS NOT NULL THEN v.arrayValue
    WHEN v.kvlistValue IS NOT NULL THEN v.kvlistValue
END;

-- arrayValue {"values": [AnyValue...]} -> compact JSON array of plain values
CREATE OR REPLACE TEMP MACRO otlp_array_json(j) AS '[' || array_to_string(list_transform(
    json_transform(j, '{"values": [{"stringValue": "VARCHAR", "intValue": "VARCHAR", "doubleValue": "VARCHAR", "boolValue": "VARCHAR", "bytesValue": "VARCHAR", "arrayValue": "JSON", "kvlistValue": "JSON"}]}').values,
    lambda _oj_e: coalesce(CAST(otlp_any_json(_oj_e) AS VARCHAR), 'null')), ',') || ']';

-- kvlistValue {"values": [{"key", "value"}...]} -> compact JSON object of plain values
CREATE OR REPLACE TEMP MACRO otlp_kvlist_json(j) AS '{' || array_to_string(list_transform(
    json_transform(j, '{"values": [{"key": "VARCHAR", "value": {"stringValue": "VARCHAR", "intValue": "VARCHAR", "doubleValue": "VARCHAR", "boolValue": "VARCHAR", "bytesValue": "VARCHAR", "arrayValue": "JSON", "kvlistValue": "JSON"}}]}').values,
    lambda _ok_kv: CAST(to_json(coalesce(_ok_kv.key, '')) AS VARCHAR) || ':' || coalesce(CAST(otlp_any_json(_ok_kv.value) AS VARCHAR), 'null')), ',') || '}';

-- AnyValue -> text: strings as is, numbers as number text, booleans true/false, bytes base64,
-- arrays and kvlists as compact JSON. {} (empty AnyValue) -> NULL.
CREATE OR REPLACE TEMP MACRO otlp_any(v) AS coalesce(
    v.stringValue, otlp_int_text(v.intValue), otlp_double_text(v.doubleValue), lower(v.boolValue), v.bytesValue,
    CASE WHEN v.arrayValue IS NOT NULL THEN otlp_array_json(v.arrayValue) END,
    CASE WHEN v.kvlistValue IS NOT NULL THEN otlp_kvlist_json(v.kvlistValue) END);

-- attribute list [{"key", "value": AnyValue}] -> MAP(VARCHAR, VARCHAR); missing -> empty map.
-- Map keys must be unique and not NULL: the (rare) lists where building the map fails are
-- rebuilt without keyless entries, the first of duplicate keys winning.
CREATE OR REPLACE TEMP MACRO otlp_keys(a) AS list_transform(a, lambda _ok_x: _ok_x.key);
CREATE OR REPLACE TEMP MACRO otlp_dedupe(a) AS CASE
    WHEN a IS NULL THEN []
    ELSE list_filter(a, lambda _od_x, _od_i: _od_x.key IS NOT NULL AND list_position(otlp_keys(a), _od_x.key) = _od_i)
END;
CREATE OR REPLACE TEMP MACRO otlp_map(a) AS map_from_entries(
    list_transform(a, lambda _oa_kv: {'key': _oa_kv.key, 'value': otlp_any(_oa_kv.value)}));
CREATE OR REPLACE TEMP MACRO otlp_attrs(a) AS coalesce(try(otlp_map(a)), otlp_map(otlp_dedupe(a)));

-- a number for a label value, formatted as Prometheus does (le="1", le="0.005", le="+Inf")
CREATE OR REPLACE TEMP MACRO otlp_num_label(d) AS CASE
    WHEN d IS NULL THEN NULL
    WHEN isnan(d) THEN 'NaN'
    WHEN isinf(d) THEN CASE WHEN d > 0 THEN '+Inf' ELSE '-Inf' END
    WHEN d = floor(d) AND abs(d) < 1e15 THEN CAST(CAST(d AS BIGINT) AS VARCHAR)
    ELSE CAST(d AS VARCHAR)
END;

-- a number field (JSON number, or string: int64 as text, "NaN", "Infinity") -> DOUBLE
CREATE OR REPLACE TEMP MACRO otlp_double(x) AS TRY_CAST(x AS DOUBLE);
