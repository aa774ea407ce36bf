"""The official `ollama` Python client, unchanged, against hoosh's Ollama
API — in front of an OpenAI-shaped mock vendor, and of the in-process local
models."""

import ollama
import pytest

ECHO = "echo: hi \u00e9\U0001F600"


@pytest.fixture(scope="module")
def client(gateway):
    return ollama.Client(host=gateway)


def test_chat(client):
    r = client.chat(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert r.message.content == ECHO
    assert r.done and r.eval_count > 0


def test_chat_streamed(client):
    parts = list(client.chat(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "".join(p.message.content for p in parts) == ECHO
    assert parts[-1].done and not any(p.done for p in parts[:-1])


def test_generate(client):
    r = client.generate(model="gpt-4o", prompt="hi", options={"num_predict": 20, "temperature": 0})
    assert r.response == ECHO


def test_tool_call(client):
    def get_weather(city: str) -> str:
        """Weather for a city.

        Args:
            city: the city
        """
        return "sunny"

    r = client.chat(model="mock-tool", messages=[{"role": "user", "content": "weather?"}], tools=[get_weather])
    call = r.message.tool_calls[0]
    assert call.function.name == "get_weather" and call.function.arguments == {"city": "Paris"}


def test_embed(client):
    r = client.embed(model="text-embedding-3-small", input=["a", "b"])
    assert len(r.embeddings) == 2 and len(r.embeddings[0]) > 0


def test_list_and_show(client):
    names = [m.model for m in client.list().models]
    assert "whisper-1" in names, names
    shown = client.show("gpt-4o")
    assert "completion" in shown.capabilities


def test_errors_are_typed(client):
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 404


def test_a_local_model_through_the_ollama_api(local_gateway):
    local = ollama.Client(host=local_gateway)
    r = local.chat(model="smollm2-135m", messages=[{"role": "user", "content": "Say hello."}], options={"num_predict": 8})
    assert r.message.content.strip()
    e = local.embed(model="minilm-l6", input="A man is eating food.")
    assert len(e.embeddings[0]) == 384
