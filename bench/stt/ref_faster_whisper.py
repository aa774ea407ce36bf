#!/usr/bin/env python3
"""Reference STT run with faster-whisper (CTranslate2) on one clip.

    ref_faster_whisper.py [--compute-type int8|float32|...] [--threads 2]
                          [--beam-size 1] MODEL_DIR CLIP.wav

Prints one JSON object: {engine, model, clip, audio_s, load_s, transcribe_s,
rtf, rss_mb, text}.
  load_s       WhisperModel(...) construction (reads model.bin, converts weights).
  transcribe_s transcribe() on the already decoded 16 kHz samples, including the
               mel spectrogram and draining the lazy segment generator.
               The wav file is decoded before the timer starts.
  rtf          transcribe_s / audio_s.
  rss_mb       peak resident set size of this process (ru_maxrss), which also
               counts the Python interpreter and the imported libraries.
Decoding: greedy (beam_size 1), language en, task transcribe, timestamps on
(without_timestamps=False), no VAD, other options at faster-whisper defaults
(temperature fallback 0.0..1.0, condition_on_previous_text=True).
"""
import argparse
import json
import os
import resource
import sys
import time
import wave

import numpy as np


def read_wav(path):
    with wave.open(path, "rb") as w:
        if w.getframerate() != 16000 or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise SystemExit(f"{path}: need 16 kHz mono 16-bit wav")
        raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("clip")
    ap.add_argument("--compute-type", default="int8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beam-size", type=int, default=1)
    ap.add_argument("--model-name", default=None)
    a = ap.parse_args()

    from faster_whisper import WhisperModel

    audio = read_wav(a.clip)
    audio_s = len(audio) / 16000.0

    t0 = time.perf_counter()
    model = WhisperModel(a.model_dir, device="cpu", compute_type=a.compute_type,
                         cpu_threads=a.threads, num_workers=1)
    load_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    segments, _info = model.transcribe(audio, language="en", task="transcribe",
                                       beam_size=a.beam_size, best_of=1,
                                       without_timestamps=False, vad_filter=False)
    text = " ".join(s.text.strip() for s in segments).strip()
    transcribe_s = time.perf_counter() - t0

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    name = a.model_name or os.path.basename(os.path.normpath(a.model_dir)).replace("whisper-", "")
    print(json.dumps({
        "engine": f"faster-whisper-{a.compute_type}",
        "model": name,
        "clip": os.path.basename(a.clip),
        "audio_s": round(audio_s, 3),
        "load_s": round(load_s, 4),
        "transcribe_s": round(transcribe_s, 4),
        "rtf": round(transcribe_s / audio_s, 4),
        "rss_mb": round(rss_mb, 1),
        "text": text,
    }))


if __name__ == "__main__":
    sys.exit(main())
