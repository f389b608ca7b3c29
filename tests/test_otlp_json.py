"""OTLP/JSON (the spec's mapping) decodes to exactly the spans of its protobuf twin."""

from __future__ import annotations

import json

import aiohttp
import pytest

from support.otlp_bodies import TRACE_ID, json_body, json_request, protobuf_request, span_fields
from support.receivers import Running
from tui.receiver.decode import BadRequest, ExportTraceServiceRequest, parse_json, spans_from_request


def test_json_and_protobuf_twins_decode_identically() -> None:
    from_json = spans_from_request(parse_json(ExportTraceServiceRequest, json_body())).spans
    from_proto = spans_from_request(protobuf_request()).spans
    assert [span_fields(s) for s in from_json] == [span_fields(s) for s in from_proto]
    root = from_json[0]
    assert root.trace_id == TRACE_ID  # upper-case hex accepted, stored lower-case
    assert root.attributes["http.response.status_code"] == 200  # int64 sent as a string
    assert root.attributes["retries"] == 3  # int64 sent as a number
    assert root.attributes["tags"] == ("a", 9007199254740993)  # beyond a double's precision
    assert root.attributes["blob"] == b"\x00\x01\x02"
    assert root.attributes["meta"] == {"inner": "x"}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["resourceSpans"][0]["scopeSpans"][0]["spans"][0].update(traceId="xyz"), "not hex"),
        (lambda d: d["resourceSpans"][0]["scopeSpans"][0]["spans"][0].update(spanId="abcd"), "8 bytes"),
        (lambda d: d["resourceSpans"][0]["scopeSpans"][0]["spans"][0].update(startTimeUnixNano="soon"), "soon"),
        (lambda d: d["resourceSpans"][0].update(scopeSpans={"not": "a list"}), "scopeSpans"),
    ],
    ids=["non-hex-id", "short-id", "non-numeric-time", "object-for-list"],
)
def test_invalid_json_values_are_bad_requests(mutate, message: str) -> None:
    document = json_request()
    mutate(document)
    with pytest.raises(BadRequest, match=message):
        parse_json(ExportTraceServiceRequest, json.dumps(document).encode())


async def test_json_over_http_answers_json(running: Running) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{running.http_url}/v1/traces", data=json_body(),
                                headers={"Content-Type": "application/json"}) as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            assert await response.json() == {}
    await running.wait_for_spans(2)
    assert running.store.get(TRACE_ID).name == "GET /chat"


async def test_chunked_json_body(running: Running) -> None:
    body = json_body()

    async def chunks():
        for i in range(0, len(body), 100):
            yield body[i : i + 100]

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{running.http_url}/v1/traces", data=chunks(),
                                headers={"Content-Type": "application/json"}) as response:
            assert response.status == 200
    await running.wait_for_spans(2)
