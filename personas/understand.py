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
    return float(_analyzer().polarity_scores(text)["compound"])


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


def _intent(text: str) -> tuple[Intent, str]:
    if _FORGET_ALL.search(text):
        return Intent.FORGET_ALL, ""
    if m := _FORGET.search(text):
        return Intent.FORGET, m["t"].strip()
    if _RECALL.search(text):
        return Intent.RECALL, ""
    for slot, pattern in _RECALL_ONE:
        if pattern.search(text):
            return Intent.RECALL, slot
    if _COUNT.search(text):
        return Intent.COUNT, ""
    if _WHO.search(text):
        return Intent.WHO_ARE_YOU, ""
    for intent, pattern in ((Intent.FAREWELL, _BYE), (Intent.THANKS, _THANKS)):
        if pattern.search(text):
            return intent, ""
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
