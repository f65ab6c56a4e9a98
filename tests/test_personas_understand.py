"""The fast paths of reading a message give exactly what the slow ones gave.

`sentiment` computes VADER's compound itself for ASCII text, and `_intent` / `extract_facts`
skip patterns whose words are missing: each is checked here against the plain version
(the library, every pattern tried) on thousands of generated messages.
"""

from __future__ import annotations

import random

from vaderSentiment import vaderSentiment as vader  # type: ignore[import-untyped]

from personas import extract, understand
from personas.extract import Extracted
from personas.understand import Intent

PHRASES = (
    "my name is Ana", "My name's Bob Smith", "call me Zed", "you can call me al", "I'm Carla", "i am Dave",
    "Im Eve", "I'm 34", "i am 27 years old", "my birthday is on May 3", "I live in Lisbon",
    "i just moved to Porto", "I'm originally from Kyiv", "i come from Oslo", "I work as a nurse",
    "my job is teaching", "I'm working as an engineer", "i work at Google", "I work for the city",
    "I study physics", "i'm studying law", "I'm a teacher", "i am an artist", "I'm a bit tired",
    "I really love jazz", "i like hiking", "I adore cats", "I enjoy reading", "I hate mornings",
    "i can't stand noise", "I don't like rain", "I do not enjoy crowds", "my favourite food is sushi",
    "my fav color is blue", "I usually run at 6", "i never drink coffee", "every morning, I walk my dog",
    "my dog's name is Rex", "My sister is called Mia", "my boss is named Tom", "I have two cats",
    "i've got a bike", "i 've got a boat", "I speak Portuguese", "I play the piano",
    "what do you know about me?", "what have I told you", "do you remember me", "what's my name?",
    "who am I", "where do I live?", "what do I do for a living?", "what's my job", "what do I like?",
    "how old am I?", "how many people are you talking to?", "are you talking to anyone else?",
    "who are you?", "are you human?", "tell me about yourself", "bye!", "good night", "see ya",
    "talk to you later", "gotta go", "thanks!", "thank you so much", "thx", "cheers", "hello",
    "good morning Samantha", "forget that I like jazz", "forget my name", "erase everything",
    "delete all you know", "wipe my data", "I'm so tired", "i feel lonely", "I've been feeling anxious",
    "not bad at all", "this is NOT good", "the book was kind of good",
    "it was good, but the ending was awful",
    "never so happy", "without doubt the best", "at least it isn't horrible", "kiss of death", "yeah right",
    "the bomb", ":) :D <3", "lol", "ok", "If I lived in Rome", "do I like jazz?", "I  live   in\tParis",
    "how  many people", "I\nlove\ncats", "VERY GOOD", "I LOVE JAZZ!!!", "I\u2019m Tom", "😀 great day 💘",
    "no good", "no, not really", "the least bad", "very least", "sort of nice",
)
MODIFIERS = ("no", "not", "never", "so", "this", "without", "doubt", "least", "at", "very", "kind", "of",
             "but", "BUT", "or", "nor", "isn't", "don't", "the", "shit", "bomb", "yeah", "right", "kiss",
             "death", "to", "die", "for", "!", "?", "!!", "???", ":)", ":-(", "lol", "really", "extremely")


def messages(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    lexicon = sorted(understand._analyzer().lexicon)
    modifiers = (*MODIFIERS, *vader.NEGATE, *sorted(vader.BOOSTER_DICT))
    out = list(PHRASES)
    for _ in range(n):
        if rng.random() < 0.5:
            glue = rng.choice([". ", ", ", " and ", "! ", "\n", "? "])
            text = glue.join(rng.sample(PHRASES, rng.randint(1, 3)))
        else:
            words = [rng.choice(lexicon) if rng.random() < 0.4 else rng.choice(modifiers)
                     for _ in range(rng.randint(0, 12))]
            text = " ".join(w.upper() if rng.random() < 0.1 else w for w in words)
        out.append(text.upper() if rng.random() < 0.1 else text + rng.choice(("", "!", "?", "!!!!", "  ")))
    return out


def test_sentiment_is_vaders_compound() -> None:
    analyzer = understand._analyzer()
    for text in messages(3000):
        assert understand.sentiment(text) == float(analyzer.polarity_scores(text)["compound"]), text


def test_vader_constants_are_the_ones_ported() -> None:
    # The port follows vaderSentiment 3.3; a release that changes these changes the scores.
    assert (vader.N_SCALAR, vader.C_INCR, vader.B_INCR) == (-0.74, 0.733, 0.293)


def every_pattern_intent(text: str) -> tuple[Intent, str]:
    """understand._intent without the word checks."""
    if understand._FORGET_ALL.search(text):
        return Intent.FORGET_ALL, ""
    if m := understand._FORGET.search(text):
        return Intent.FORGET, m["t"].strip()
    if understand._RECALL.search(text):
        return Intent.RECALL, ""
    for slot, pattern in understand._RECALL_ONE:
        if pattern.search(text):
            return Intent.RECALL, slot
    for intent, pattern in ((Intent.COUNT, understand._COUNT), (Intent.WHO_ARE_YOU, understand._WHO),
                            (Intent.FAREWELL, understand._BYE), (Intent.THANKS, understand._THANKS),
                            (Intent.GREET, understand._GREET)):
        if pattern.search(text):
            return intent, ""
    return (Intent.QUESTION if text.endswith("?") else Intent.CHAT), ""


def every_pattern_facts(sentence: str) -> list[Extracted]:
    """extract._sentence_facts without the word checks."""
    hits = []
    for rule in extract._PATTERNS:
        for m in rule.pattern.finditer(sentence):
            value = extract._clean_name(m["v"]) if rule.name else extract.clean_value(m["v"])
            subject = (m.groupdict().get("s") or "").strip().lower()
            if value and (rule.kind != "identity" or extract._is_identity(value)):
                hits.append((m.start(), Extracted(rule.kind, value, subject)))
    hits.sort(key=lambda h: h[0])
    return [h[1] for h in hits]


def test_word_checks_skip_only_patterns_that_cannot_match() -> None:
    for text in messages(3000, seed=11):
        assert understand._intent(text.strip()) == every_pattern_intent(text.strip()), text
        for sentence in (s.strip() for s in extract._SENTENCE.findall(text)):
            assert extract._sentence_facts(sentence) == every_pattern_facts(sentence), sentence


def test_every_pattern_has_its_words() -> None:
    for rule in extract._PATTERNS:
        assert rule.need and all(w == w.lower() for w in rule.need), rule.kind
