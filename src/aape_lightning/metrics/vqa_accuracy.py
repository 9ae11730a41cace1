"""VQAv2 accuracy: the official answer normalisation and min(#humans / 3, 1) over 10-choose-9 subsets."""

from __future__ import annotations

import re

_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
            "seven": "7", "eight": "8", "nine": "9", "ten": "10"}  # fmt: skip
_ARTICLES = {"a", "an", "the"}
# apostrophe-less spellings -> the official form (a subset of the VQA evaluation's table)
_CONTRACTIONS = {
    "arent": "aren't", "cant": "can't", "couldnt": "couldn't", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hasnt": "hasn't", "havent": "haven't", "hes": "he's", "im": "i'm",
    "isnt": "isn't", "itd": "it'd", "itll": "it'll", "ive": "i've", "shes": "she's", "shouldnt": "shouldn't",
    "thats": "that's", "theres": "there's", "theyre": "they're", "wasnt": "wasn't", "werent": "weren't",
    "whats": "what's", "wont": "won't", "wouldnt": "wouldn't", "youre": "you're", "youve": "you've",
    "yall": "y'all", "lets": "let's", "wheres": "where's", "whos": "who's", "hows": "how's",
}  # fmt: skip
_PUNCT = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")  # a period not followed by a digit (the official pattern, kept as is)
_COMMA_DIGITS = re.compile(r"(\d)(,)(\d)")


def _punctuation(text: str) -> str:
    out = text
    for p in _PUNCT:
        if (p + " " in text or " " + p in text) or _COMMA_DIGITS.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD.sub("", out)


def normalize_answer(answer: str) -> str:
    """The VQA evaluation's normalisation: punctuation, number words, articles, contractions."""
    text = _punctuation(answer.replace("\n", " ").replace("\t", " ").strip().lower())
    words = [_NUMBERS.get(w, w) for w in text.split() if w not in _ARTICLES]  # number words first, then contractions
    words = [_CONTRACTIONS.get(w, w) for w in words]
    return " ".join(words)


def vqa_accuracy(prediction: str, answers: list[str]) -> float:
    """Mean over the 10 leave-one-out subsets of ``min(#matching humans in the subset / 3, 1)``."""
    if not answers:
        raise ValueError("vqa_accuracy: a question needs at least one human answer")
    pred = normalize_answer(prediction)
    gts = [normalize_answer(a) for a in answers]
    scores = []
    for i in range(len(gts)):
        matches = sum(g == pred for j, g in enumerate(gts) if j != i)
        scores.append(min(matches / 3, 1.0))
    return sum(scores) / len(scores)
