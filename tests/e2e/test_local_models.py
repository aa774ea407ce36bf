"""The bundled local models, served by `hoosh serve` with no config, through
the official OpenAI SDK."""

import json
import math

import openai
import pytest


@pytest.fixture(scope="module")
def local(local_gateway):
    return openai.OpenAI(base_url=f"{local_gateway}/v1", api_key="unused", max_retries=0, timeout=300)


def test_models_lists_the_bundled_ones(local):
    ids = {m.id for m in local.models.list()}
    assert {"smollm2-135m", "minilm-l6"} <= ids


def test_chat_answers_from_smollm2(local):
    r = local.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": "Which city is the capital of France?"}],
        temperature=0,
        max_tokens=24,
    )
    assert "Paris" in r.choices[0].message.content
    assert r.usage.prompt_tokens > 10 and r.usage.completion_tokens > 0


def test_stream(local):
    text = ""
    for chunk in local.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": "Name three colors."}],
        temperature=0,
        max_tokens=30,
        stream=True,
    ):
        for c in chunk.choices:
            text += c.delta.content or ""
    assert len(text.strip()) > 0


def test_json_mode_output_parses(local):
    r = local.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": "Describe a cat as a JSON object with a name and an age."}],
        response_format={"type": "json_object"},
        temperature=0,
        max_tokens=120,
    )
    assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_embeddings_match_the_reference(local):
    r = local.embeddings.create(
        model="minilm-l6",
        input=["A man is eating food.", "A man is eating a piece of bread."],
        encoding_format="float",
    )
    a, b = r.data[0].embedding, r.data[1].embedding
    assert len(a) == 384
    cos = sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    assert abs(cos - 0.7553) < 1e-3


FIXTURES = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "audio"
S2 = "please schedule a meeting with the engineering team for next tuesday at three o'clock"


def _words(text):
    import re

    return re.sub(r"[^a-z' ]", " ", text.lower().replace("3", " three ")).split()


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt", "verbose_json"])
def test_whisper_transcribes_through_the_sdk(local, fmt):
    with open(FIXTURES / "s2.wav", "rb") as f:
        out = local.audio.transcriptions.create(model="whisper-tiny.en", file=f, response_format=fmt)
    if fmt in ("json", "verbose_json"):
        assert _words(out.text) == S2.split()
    if fmt == "verbose_json":
        assert out.language == "english" and 5.0 < out.duration < 5.5
        ends = [s.end for s in out.segments]
        assert ends == sorted(ends) and ends[-1] <= out.duration + 0.5
    if fmt == "text":
        assert _words(out) == S2.split()
    if fmt == "srt":
        import srt

        cues = list(srt.parse(out))  # a real subtitle parser; raises on a malformed file
        assert cues and all(c.start < c.end for c in cues)
        assert [c.start for c in cues] == sorted(c.start for c in cues)
        assert _words(" ".join(c.content for c in cues)) == S2.split()
    if fmt == "vtt":
        import io

        import webvtt

        cues = list(webvtt.from_buffer(io.StringIO(out)))
        assert cues and all(c.start_in_seconds < c.end_in_seconds for c in cues)
        assert _words(" ".join(c.text for c in cues)) == S2.split()


def test_whisper_english_only_model_refuses_translation(local):
    with open(FIXTURES / "s1.wav", "rb") as f, pytest.raises(openai.BadRequestError) as e:
        local.audio.translations.create(model="whisper-tiny.en", file=f)
    assert "English-only" in e.value.message
