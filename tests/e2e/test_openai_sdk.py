"""The official `openai` Python SDK, unchanged, against hoosh."""

import json

import openai
import pytest


@pytest.fixture(scope="module")
def client(gateway):
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0)


def test_chat(client):
    r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "echo: hi \u00e9\U0001F600"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens > 0


def test_raw_response_headers(client):
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert raw.headers["x-request-id"]
    assert raw.headers["x-hoosh-provider"] == "mock"


def test_stream_with_usage(client):
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "stream"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    assert text == "echo: stream \u00e9\U0001F600"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


def test_tool_call_round_trip(client):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    msgs = [{"role": "user", "content": "weather in Paris?"}]
    r = client.chat.completions.create(model="mock-tool", messages=msgs, tools=tools)
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    msgs.append(r.choices[0].message.model_dump(exclude_none=True))
    msgs.append({"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'})
    r2 = client.chat.completions.create(model="gpt-4o", messages=msgs, tools=tools)
    assert r2.choices[0].message.content.startswith("echo:")

    # Streamed: the SDK's chunks carry the tool call fragments.
    args = ""
    for chunk in client.chat.completions.create(model="mock-tool", messages=msgs[:1], tools=tools, stream=True):
        for c in chunk.choices:
            for tc in c.delta.tool_calls or []:
                args += tc.function.arguments or ""
    assert json.loads(args) == {"city": "Paris"}


def test_embeddings(client):
    r = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(r.data) == 2 and len(r.data[0].embedding) == 8
    # The SDK asks for base64 by default when numpy is absent; both decode the same.
    f = client.embeddings.create(model="text-embedding-3-small", input="a", encoding_format="float")
    assert f.data[0].embedding == pytest.approx(r.data[0].embedding)


def test_models(client):
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o", "text-embedding-3-small"} <= ids
    assert client.models.retrieve("gpt-4o").owned_by == "mock"


def test_unknown_model_is_not_found_error(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "model_not_found"
    assert e.value.request_id


def test_bad_request_is_bad_request_error(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}], temperature=5)
    assert e.value.body["param"] == "temperature"


def test_rate_limit_is_rate_limit_error(client):
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="mock-error-429-retry-1", messages=[{"role": "user", "content": "x"}])
    assert e.value.response.headers["retry-after"] == "1"


def test_mid_stream_failure_raises(client):
    stream = client.chat.completions.create(model="mock-cut", messages=[{"role": "user", "content": "x"}], stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_legacy_completions(client):
    r = client.completions.create(model="gpt-4o", prompt="Say hi")
    assert r.choices[0].text == "echo: Say hi \u00e9\U0001F600"


FIXTURES = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "audio"


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt", "verbose_json"])
def test_audio_transcriptions_and_translations_every_format(client, fmt):
    """Through a remote (mock) provider: the SDK sends the form, hoosh passes it on."""
    size = (FIXTURES / "s1.wav").stat().st_size
    for create, word in [(client.audio.transcriptions.create, "transcript"), (client.audio.translations.create, "translation")]:
        with open(FIXTURES / "s1.wav", "rb") as f:
            out = create(model="whisper-1", file=f, response_format=fmt)
        text = out if isinstance(out, str) else out.text
        assert f"mock {word} of {size} bytes" in text, (fmt, out)
        if fmt == "verbose_json":
            assert out.duration > 0 and out.segments


def test_audio_bad_upload_is_bad_request_error(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.audio.transcriptions.create(model="whisper-1", file=("notes.wav", b"plain text, not audio"))
    assert e.value.body["param"] == "file"


def test_audio_speech_streams_bytes(client):
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input="Hello from hoosh.", response_format="wav"
    ) as r:
        assert r.headers["content-type"] == "audio/wav"
        audio = b"".join(r.iter_bytes())
    assert audio[:4] == b"RIFF"
