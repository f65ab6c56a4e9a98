"""Reading a message before answering it: intent, facts, feeling, topics. Pure functions.

The worker reads every message once, applies what it says to the person's memory (learn,
forget) and hands the reading to the mind, so memory commands work the same whatever mind
(reflex or a model) writes the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from vaderSentiment import vaderSentiment as vader  # type: ignore[import-untyped]
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # type: ignore[import-untyped]

from personas.extract import Extracted, clean_value, extract_facts


class Intent(StrEnum):
    CHAT = "chat"
    GREET = "greet"
    FAREWELL = "farewell"
    THANKS = "thanks"
    RECALL = "recall"  # "what do you know about me?" (target: one slot, or "" for all)
    FORGET = "forget"  # "forget that I like jazz" (target: what to forget)
    FORGET_ALL = "forget_all"
    COUNT = "count"  # "how many people are you talking to?"
    WHO_ARE_YOU = "who_are_you"
    QUESTION = "question"  # any other question


@dataclass(frozen=True)
class Reading:
    intent: Intent
    facts: tuple[Extracted, ...] = ()
    sentiment: float = 0.0  # VADER compound, -1..1
    feeling: str = ""  # "tired" from "I'm so tired"
    topics: tuple[str, ...] = ()
    target: str = ""
    words: int = 0


_I = re.IGNORECASE
_FORGET_ALL = re.compile(r"\b(?:forget|erase|delete|wipe)\s+(?:about\s+)?(?:everything|all\b(?: about me)?"
                         r"|me\b|all you know|what you know|my data|everything you know)", _I)
_FORGET = re.compile(r"\b(?:forget|erase|delete)\s+(?:that\s+|about\s+|the fact that\s+)?"
                     r"(?P<t>[^.!?\n]+)", _I)
_RECALL = re.compile(r"\b(?:what|which things|tell me what)\b.{0,20}\b(?:you|u)\s+(?:know|remember|learned|"
                     r"learnt|recall)\b.{0,12}\babout me\b|\bwhat have i told you\b"
                     r"|\bdo you remember me\b", _I)
_RECALL_ONE = (
    ("name", re.compile(r"\b(?:what'?s|what is|do you (?:know|remember)|say)\s+my name\b|\bwho am i\b", _I)),
    ("home", re.compile(r"\bwhere do i live\b|\bwhere(?:'s| is) my home\b", _I)),
    ("job", re.compile(r"\bwhat do i do for (?:a )?(?:living|work)\b|\bwhat(?:'s| is) my job\b", _I)),
    ("like", re.compile(r"\bwhat do i (?:like|love|enjoy)\b", _I)),
    ("age", re.compile(r"\bhow old am i\b", _I)),
)
_COUNT = re.compile(r"\bhow many\b.{0,30}\b(?:people|persons|humans|others|users|conversations|chats|"
                    r"of us|talking|speaking)\b|\bare you (?:talking|speaking|chatting) (?:to|with) "
                    r"(?:anyone|anybody|someone|other)", _I)
_WHO = re.compile(r"\bwho are you\b|\bwhat are you\b|\btell me about yourself\b|\bare you (?:a |an )?"
                  r"(?:human|real|person|ai|bot|robot|machine|alive)\b", _I)
_GREET = re.compile(r"^\W*(?:hi|hello|hey|hiya|howdy|yo|good (?:morning|afternoon|evening))\b", _I)
_BYE = re.compile(r"\b(?:bye|goodbye|good night|goodnight|see you|see ya|talk (?:to you )?later"
                  r"|gotta go)\b", _I)
_THANKS = re.compile(r"\b(?:thanks|thank you|thx|cheers)\b", _I)
_FEELINGS = ("happy|sad|tired|exhausted|lonely|anxious|nervous|excited|stressed|bored|angry|upset|"
             "great|good|fine|okay|ok|awful|terrible|depressed|calm|relaxed|sick|ill|worried|"
             "overwhelmed|hopeful|grateful|frustrated|scared|proud|down|low|amazing|wonderful")
_FEELING = re.compile(r"\bi(?:'m| am| feel| am feeling|'m feeling|'ve been feeling| have been feeling)\s+"
                      r"(?:so |really |very |a bit |a little |kind of |kinda |pretty |quite |super )?"
                      r"(?P<f>" + _FEELINGS + r")\b", _I)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
_STOP = frozenset("""
about above after again against also always another anything anyway around because been before being
below between both cannot could does doing down during each else even ever every everything from
further have having here hers herself himself into itself just know like love make many maybe more
most much must myself never only other ought ours ourselves over really same should some something
such than that that's their theirs them themselves then there these they thing things think this
those through today tomorrow under until very want what when where which while will with would yeah
your yours yourself yourselves yesterday tonight morning night week weekend time really pretty quite
going gonna wanna sure okay well hello thanks thank good great feel feeling still lately actually
people person talk talking tell said says saying told please sorry kind sort lots little bit
nice cool sick weird funny boring awesome beautiful lovely bad best better worse worst hard easy
true real right wrong long short last next first haha lol lmao hmm yes yep nope okay alright
""".split()) | frozenset(_FEELINGS.split("|"))
# Replies that answer nothing, whatever was asked.
_FILLER = frozenset("ok okay k yes yeah yep no nope nah lol haha hmm hm sure maybe idk dunno fine cool "
                    "what why huh nothing whatever".split())
# Short answers to the question the persona just asked ("What should I call you?" "Ana").
_ANSWER_PREFIX = re.compile(r"^\s*(?:it'?s|i'?m|i am|my name is|call me|in|at|as an?|an?|i like|i love)"
                            r"\s+", _I)


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> float:
    """VADER's compound score of ``text``, -1..1."""
    if text.isascii():
        return _compound(text)
    return float(_analyzer().polarity_scores(text)["compound"])


# VADER's compound score, step for step as vaderSentiment 3.3 computes it, for ASCII text (no
# emoji to translate). Its own code lowercases every word of the message again for each
# sentiment word and each of the three words before it, and computes the pos/neg/neu split
# we never read: most of the cost of reading a message. tests/test_personas_understand.py
# checks this against the library on thousands of messages.
_NEGATE = frozenset(vader.NEGATE)
_BOOSTERS = vader.BOOSTER_DICT
_SPECIAL = vader.SPECIAL_CASES


def _negated(word: str) -> bool:
    return word in _NEGATE or "n't" in word


def _compound(text: str) -> float:
    analyzer = _analyzer()
    lexicon = analyzer.lexicon
    text = text.strip()
    words = [vader.SentiText._strip_punc_if_word(w) for w in text.split()]
    lows = [w.lower() for w in words]
    cap_diff = vader.allcap_differential(words)
    n = len(words)
    sentiments: list[float] = []
    for i, low in enumerate(lows):
        if low in _BOOSTERS or (i < n - 1 and low == "kind" and lows[i + 1] == "of"):
            sentiments.append(0)
            continue
        sentiments.append(_valence(words, lows, i, lexicon, cap_diff) if low in lexicon else 0)
    if "but" in lows:
        sentiments = SentimentIntensityAnalyzer._but_check(words, sentiments)
    if not sentiments:
        return 0.0
    total = float(sum(sentiments))
    emphasis = analyzer._punctuation_emphasis(text)
    if total > 0:
        total += emphasis
    elif total < 0:
        total -= emphasis
    return float(round(vader.normalize(total), 4))


def _valence(words: list[str], lows: list[str], i: int, lexicon: dict[str, float],
             cap_diff: bool) -> float:
    """SentimentIntensityAnalyzer.sentiment_valence for a word of the lexicon."""
    low, n = lows[i], len(lows)
    valence = lexicon[low]
    if low == "no" and i != n - 1 and lows[i + 1] in lexicon:
        valence = 0.0
    if (i > 0 and lows[i - 1] == "no") or (i > 1 and lows[i - 2] == "no") \
            or (i > 2 and lows[i - 3] == "no" and lows[i - 1] in ("or", "nor")):
        valence = lexicon[low] * vader.N_SCALAR
    if words[i].isupper() and cap_diff:
        valence = valence + vader.C_INCR if valence > 0 else valence - vader.C_INCR
    for start in range(3):
        if i > start and lows[i - (start + 1)] not in lexicon:
            s = vader.scalar_inc_dec(words[i - (start + 1)], valence, cap_diff)
            if start == 1 and s != 0:
                s = s * 0.95
            if start == 2 and s != 0:
                s = s * 0.9
            valence = valence + s
            valence = _negation(valence, lows, start, i)
            if start == 2:
                valence = _idioms(valence, lows, i)
    if i > 1 and lows[i - 1] not in lexicon and lows[i - 1] == "least":
        if lows[i - 2] != "at" and lows[i - 2] != "very":
            valence = valence * vader.N_SCALAR
    elif i > 0 and lows[i - 1] not in lexicon and lows[i - 1] == "least":
        valence = valence * vader.N_SCALAR
    return valence


def _negation(valence: float, lows: list[str], start: int, i: int) -> float:
    if start == 0 and _negated(lows[i - 1]):
        valence = valence * vader.N_SCALAR
    if start == 1:
        if lows[i - 2] == "never" and (lows[i - 1] == "so" or lows[i - 1] == "this"):
            valence = valence * 1.25
        elif lows[i - 2] == "without" and lows[i - 1] == "doubt":
            pass
        elif _negated(lows[i - 2]):
            valence = valence * vader.N_SCALAR
    if start == 2:
        if (lows[i - 3] == "never" and (lows[i - 2] == "so" or lows[i - 2] == "this")) or \
                (lows[i - 1] == "so" or lows[i - 1] == "this"):
            valence = valence * 1.25
        elif lows[i - 3] == "without" and (lows[i - 2] == "doubt" or lows[i - 1] == "doubt"):
            pass
        elif _negated(lows[i - 3]):
            valence = valence * vader.N_SCALAR
    return valence


def _idioms(valence: float, lows: list[str], i: int) -> float:
    """SentimentIntensityAnalyzer._special_idioms_check (i >= 3 here)."""
    onezero = f"{lows[i - 1]} {lows[i]}"
    twoonezero = f"{lows[i - 2]} {lows[i - 1]} {lows[i]}"
    twoone = f"{lows[i - 2]} {lows[i - 1]}"
    threetwoone = f"{lows[i - 3]} {lows[i - 2]} {lows[i - 1]}"
    threetwo = f"{lows[i - 3]} {lows[i - 2]}"
    for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
        if seq in _SPECIAL:
            valence = _SPECIAL[seq]
            break
    if len(lows) - 1 > i:
        zeroone = f"{lows[i]} {lows[i + 1]}"
        if zeroone in _SPECIAL:
            valence = _SPECIAL[zeroone]
    if len(lows) - 1 > i + 1:
        zeroonetwo = f"{lows[i]} {lows[i + 1]} {lows[i + 2]}"
        if zeroonetwo in _SPECIAL:
            valence = _SPECIAL[zeroonetwo]
    for n_gram in (threetwoone, threetwo, twoone):
        if n_gram in _BOOSTERS:
            valence = valence + _BOOSTERS[n_gram]
    return valence


def read(text: str, asked: str = "") -> Reading:
    """Read ``text``; ``asked`` is the memory slot the persona's last question was about."""
    text = text.strip()
    words = len(text.split())
    intent, target = _intent(text)
    # A forget request repeats what to forget: learning from it would undo it.
    forgetting = intent in (Intent.FORGET, Intent.FORGET_ALL)
    facts = () if forgetting else tuple(extract_facts(text))
    if not facts and asked and not forgetting and intent in (Intent.CHAT, Intent.GREET) and words <= 5:
        facts = _short_answer(text, asked)
    feeling = _FEELING.search(text)
    return Reading(
        intent=intent,
        facts=facts,
        sentiment=sentiment(text),
        feeling=feeling["f"].lower() if feeling else "",
        topics=topics(text),
        target=target,
        words=words,
    )


# Words without which a pattern cannot match (lowercase; never spanning a `\s+`). A persona
# reads every message: on ASCII text (where IGNORECASE is plain lower()) a pattern runs only
# when its words are there, which skips most of them. Other text runs every pattern.
_NEED_FORGET = ("forget", "erase", "delete", "wipe")
_NEED_RECALL = ("about me", "what have i told you", "do you remember me")
_NEED_RECALL_ONE = {"name": ("my name", "who am i"), "home": ("where",), "job": ("what",),
                    "like": ("what do i ",), "age": ("how old am i",)}
_NEED_COUNT = ("how many", "are you ")
_NEED_WHO = ("who are you", "what are you", "about yourself", "are you ")
_NEED_BYE = ("bye", "night", "see y", "later", "gotta go")
_NEED_THANKS = ("thank", "thx", "cheers")


def _may(low: str | None, words: tuple[str, ...]) -> bool:
    if low is None:
        return True
    for w in words:  # a loop: any() over a generator costs more than the checks
        if w in low:
            return True
    return False


def _intent(text: str) -> tuple[Intent, str]:
    low = text.lower() if text.isascii() else None
    if _may(low, _NEED_FORGET):
        if _FORGET_ALL.search(text):
            return Intent.FORGET_ALL, ""
        if m := _FORGET.search(text):
            return Intent.FORGET, m["t"].strip()
    if _may(low, _NEED_RECALL) and _RECALL.search(text):
        return Intent.RECALL, ""
    for slot, pattern in _RECALL_ONE:
        if _may(low, _NEED_RECALL_ONE[slot]) and pattern.search(text):
            return Intent.RECALL, slot
    if _may(low, _NEED_COUNT) and _COUNT.search(text):
        return Intent.COUNT, ""
    if _may(low, _NEED_WHO) and _WHO.search(text):
        return Intent.WHO_ARE_YOU, ""
    if _may(low, _NEED_BYE) and _BYE.search(text):
        return Intent.FAREWELL, ""
    if _may(low, _NEED_THANKS) and _THANKS.search(text):
        return Intent.THANKS, ""
    if _GREET.search(text):
        return Intent.GREET, ""
    if text.endswith("?"):
        return Intent.QUESTION, ""
    return Intent.CHAT, ""


def _short_answer(text: str, asked: str) -> tuple[Extracted, ...]:
    body = _ANSWER_PREFIX.sub("", text).strip(" .!")
    if not body or body.endswith("?") or body.lower() in _FILLER or sentiment(body) < -0.3:
        return ()
    if asked == "name":
        name = body.split()[0].strip(",")
        ok = name[:1].isalpha() and name.lower() not in _STOP
        return (Extracted("name", name[:1].upper() + name[1:]),) if ok else ()
    if asked == "home" and not body[:1].isupper():
        return ()  # places are names; "a small flat" is better asked again than guessed
    kind = {"home": "home", "job": "job", "like": "like", "favourite": "like"}.get(asked)
    value = clean_value(body) if kind else ""
    return (Extracted(kind, value),) if kind and value else ()


def topics(text: str, limit: int = 5) -> tuple[str, ...]:
    """Content words worth talking about, in order of appearance."""
    seen: list[str] = []
    for word in _WORD.findall(text):
        low = word.lower().strip("'-")
        if low not in _STOP and low not in seen and not low.endswith(("'s", "ly")):
            seen.append(low)
        if len(seen) == limit:
            break
    return tuple(seen)
