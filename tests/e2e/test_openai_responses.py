"""The official `openai` Python SDK's Responses API, unchanged, against hoosh
(in front of a chat-completions mock vendor)."""

import json

import openai
import pytest

ECHO = "echo: hi \u00e9\U0001F600"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def client(gateway):
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0)


def test_create(client):
    r = client.responses.create(model="gpt-4o", input="hi", instructions="Be brief.", store=False)
    assert r.status == "completed"
    assert r.output_text == ECHO
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0


def test_stream_helper(client):
    with client.responses.stream(model="gpt-4o", input="hi", store=False) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == ECHO
    assert final.output_text == ECHO
    assert final.status == "completed"


def test_raw_event_stream(client):
    events = list(client.responses.create(model="gpt-4o", input="hi", stream=True, store=False))
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_function_call_round_trip(client):
    first = client.responses.create(model="mock-tool", input="weather in Paris?", tools=[WEATHER], store=False)
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    second = client.responses.create(
        model="gpt-4o",
        tools=[WEATHER],
        store=False,
        input=[
            {"role": "user", "content": "weather in Paris?"},
            call.model_dump(exclude_none=True),
            {"type": "function_call_output", "call_id": call.call_id, "output": "18C"},
        ],
    )
    assert second.status == "completed"


def test_previous_response_id_with_store(client):
    first = client.responses.create(model="gpt-4o", input="remember hi", store=True)
    again = client.responses.retrieve(first.id)
    assert again.output_text == first.output_text
    follow = client.responses.create(model="gpt-4o", input="hi", previous_response_id=first.id, store=True)
    assert follow.output_text == ECHO
    items = client.responses.input_items.list(first.id)
    assert items.data[0].content[0].text == "remember hi"
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
