"""The official `anthropic` Python SDK, unchanged, against hoosh's
Messages API — in front of an OpenAI-shaped mock vendor, and of the
in-process local model."""

import anthropic
import pytest

ECHO = "echo: hi \u00e9\U0001F600"
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def client(gateway):
    return anthropic.Anthropic(base_url=gateway, api_key="unused", max_retries=0)


def test_message(client):
    m = client.messages.create(
        model="gpt-4o", max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "hi"}]
    )
    assert m.type == "message" and m.role == "assistant"
    assert m.content[0].type == "text" and m.content[0].text == ECHO
    assert m.stop_reason == "end_turn"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0


def test_stream_helper(client):
    with client.messages.stream(
        model="gpt-4o", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == ECHO
    assert final.content[0].text == ECHO
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_tool_round_trip(client):
    ask = {"role": "user", "content": "weather in Paris?"}
    m = client.messages.create(model="mock-tool", max_tokens=100, tools=[WEATHER], messages=[ask])
    assert m.stop_reason == "tool_use"
    call = next(b for b in m.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"city": "Paris"}
    follow = client.messages.create(
        model="gpt-4o",
        max_tokens=100,
        tools=[WEATHER],
        messages=[
            ask,
            {"role": "assistant", "content": [b.model_dump() for b in m.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}]},
        ],
    )
    assert follow.stop_reason == "end_turn"


def test_streamed_tool_call_accumulates_its_input(client):
    with client.messages.stream(
        model="mock-tool", max_tokens=100, tools=[WEATHER], messages=[{"role": "user", "content": "weather?"}]
    ) as stream:
        final = stream.get_final_message()
    call = next(b for b in final.content if b.type == "tool_use")
    assert call.input == {"city": "Paris"}
    assert final.stop_reason == "tool_use"


def test_count_tokens(client):
    r = client.messages.count_tokens(model="gpt-4o", messages=[{"role": "user", "content": "count these words"}])
    assert r.input_tokens > 0


def test_typed_errors(client):
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="claude-unknown", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model="gpt-4o", max_tokens=0, messages=[{"role": "user", "content": "x"}])
    assert "max_tokens" in str(e.value)
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="mock-error-429", max_tokens=5, messages=[{"role": "user", "content": "x"}])


def test_a_local_model_answers_the_messages_api(local_gateway):
    local = anthropic.Anthropic(base_url=local_gateway, api_key="unused", max_retries=0)
    m = local.messages.create(
        model="smollm2-135m", max_tokens=12, messages=[{"role": "user", "content": "Say hello."}]
    )
    assert m.content and m.content[0].text.strip()
    assert m.usage.output_tokens > 0
    with local.messages.stream(
        model="smollm2-135m", max_tokens=8, messages=[{"role": "user", "content": "Count to three."}]
    ) as stream:
        text = "".join(stream.text_stream)
    assert text.strip()
