#!/usr/bin/env python3
"""Word error rate for the STT benchmark.

    wer.py REFERENCE HYPOTHESIS        (each a string, or @FILE to read a file)

Prints "WER errors/ref_words" e.g. "0.0857 3/35". Importable: normalize(),
wer_counts(ref, hyp) -> (errors, n_ref_words).

Normalisation (applied to both sides): lowercase; hyphens and slashes become
spaces; every other character that is not a letter, digit or space is removed
(so "o'clock" -> "oclock"); standalone numbers 0-20 become words ("3" ->
"three"). Errors = word-level Levenshtein distance (substitutions + deletions +
insertions); WER = errors / number of reference words.
"""
import re
import sys

NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve "
                "thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty").split()


def normalize(text):
    text = text.lower()
    text = re.sub(r"[-/]", " ", text)
    text = re.sub(r"[^\w\s]|_", "", text)
    words = []
    for w in text.split():
        if w.isdigit() and int(w) < len(NUMBER_WORDS):
            w = NUMBER_WORDS[int(w)]
        words.append(w)
    return words


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, wa in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, wb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (wa != wb))
        prev = cur
    return prev[-1]


def wer_counts(ref, hyp):
    r, h = normalize(ref), normalize(hyp)
    return edit_distance(r, h), len(r)


def _arg(s):
    if s.startswith("@"):
        return open(s[1:], encoding="utf-8").read()
    return s


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    e, n = wer_counts(_arg(sys.argv[1]), _arg(sys.argv[2]))
    print(f"{e / max(n, 1):.4f} {e}/{n}")
