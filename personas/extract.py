"""What a message says about the person who wrote it: facts by pattern. Pure functions.

Patterns, not a model: they are fast (a persona reads thousands of messages a second),
deterministic and explainable, and they miss more than they invent — a wrong "fact" is
worse than a missed one, so questions, hypotheticals and vague objects are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Kinds that hold one value (a new one replaces the old); the others accumulate.
SINGLE = frozenset({"name", "age", "home", "origin", "job", "workplace", "birthday", "study"})
MAX_WORDS = 8
_VALUE = r"(?P<v>[^.,;!?\n]+)"
_NAME = r"(?P<v>[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)?)"
_END = r"\s*(?:[.!,]|$)"
_CUT = re.compile(r"\s+(?:but|because|since|though|although|so|when|while|which|and i|and my|"
                  r"and i'm|and we|or)\b.*$", re.IGNORECASE)
_VAGUE = frozenset({"it", "that", "this", "them", "those", "these", "you", "him", "her", "so",
                    "too", "a lot", "very much", "much", "things", "stuff", "everything",
                    "nothing", "something", "anything", "question", "a question", "idea",
                    "an idea", "problem", "a problem", "feeling", "a feeling", "sure", "not sure",
                    "fine", "ok", "okay", "good", "well", "here", "back", "sorry", "glad"})
# Capitalised words that follow "I'm" but are not names ("I'm Fine, thanks").
_NOT_NAMES = frozenset({"happy", "sad", "tired", "fine", "good", "great", "okay", "ok", "sorry", "back",
                        "here", "home", "busy", "bored", "ready", "sure", "excited", "done", "well",
                        "lonely", "angry", "stressed", "new", "not", "so", "very", "just", "also"})
_TRAILING = re.compile(r"\s+(?:a lot|so much|very much|too|as well|anymore|lately|now|originally)$", re.I)
_SWAP = {"my": "your", "me": "you", "i": "you", "i'm": "you're", "im": "you're", "myself": "yourself",
         "mine": "yours", "am": "are", "i've": "you've", "i'd": "you'd", "our": "your", "we": "you"}
_RELATIVES = (r"dog|cat|pet|wife|husband|partner|son|daughter|brother|sister|mom|mum|mother|dad|"
              r"father|friend|best friend|boss|kid|girlfriend|boyfriend|grandma|grandpa|cousin")
_ADVERBS = r"(?:really\s+|absolutely\s+|just\s+|totally\s+|truly\s+|also\s+|do\s+)?"


@dataclass(frozen=True, slots=True)
class Extracted:
    """One thing learned: ``kind`` (name, like, habit…), ``value``, and for some a ``subject``
    (the favourite's category, the relative's role, the habit's frequency)."""

    kind: str
    value: str
    subject: str = ""


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    name: bool  # the value is a proper name: keep its capitals, at most two words
    # Lowercase words without which the pattern cannot match (never across a `\s+`): on
    # ASCII text the pattern runs only when one is there. Most rules find nothing in most
    # sentences, and twenty regex scans per sentence were most of reading a message.
    need: tuple[str, ...]


def _r(kind: str, pattern: str, *need: str, name: bool = False, flags: int = re.IGNORECASE) -> _Rule:
    return _Rule(kind, re.compile(pattern, flags), name, need)


# Every rule is tried on every sentence; hits come back in the order they appear.
_PATTERNS: tuple[_Rule, ...] = (
    _r("name", r"\bmy name(?:'s| is)\s+" + r"(?P<v>[A-Za-z][\w'-]*(?:\s+[A-Z][\w'-]*)?)", "my name",
       name=True),
    _r("name", r"\b(?:call me|you can call me)\s+(?P<v>[A-Za-z][\w'-]*)", "call me", name=True),
    _r("name", r"(?:^|[,!]\s*)(?:[Ii]'m|[Ii] am|[Ii]m)\s+" + _NAME + _END, "i'm", "i am", "im",
       name=True, flags=0),
    _r("age", r"\bi(?:'m| am)\s+(?P<v>\d{1,3})(?:\s+years?\s+old|" + _END + r")", "i'm", "i am"),
    _r("birthday", r"\bmy birthday is(?: on)?\s+" + _VALUE, "my birthday is"),
    _r("home", r"\bi(?: live| am living|'m living| moved| just moved)\s+(?:in|to)\s+" + _VALUE,
       "live", "living", "moved"),
    _r("origin", r"\bi(?:'m| am| come| originally come)\s+(?:originally\s+)?from\s+" + _VALUE, "from"),
    _r("job", r"\b(?:i work as|i(?:'m| am) working as|my job is|i work as)\s+(?:an?\s+)?" + _VALUE,
       "i work as", " working as", "my job is"),
    _r("workplace", r"\bi work (?:at|for)\s+" + _VALUE, "i work "),
    _r("study", r"\bi(?:'m| am)? ?(?:study|studying)\s+" + _VALUE, "study"),
    _r("identity", r"\bi(?:'m| am)\s+(?:an?)\s+" + _VALUE, "i'm", "i am"),
    _r("like", r"\bi\s+" + _ADVERBS + r"(?:like|love|adore|enjoy)\s+" + _VALUE,
       "like", "love", "adore", "enjoy"),
    _r("dislike", r"\bi\s+" + _ADVERBS + r"(?:hate|dislike|detest|loathe|can't stand|cannot stand|"
                   r"don't like|do not like|don't enjoy|do not enjoy)\s+" + _VALUE,
       "hate", "like", "detest", "loathe", "stand", "enjoy"),
    _r("favourite", r"\bmy (?:fav(?:ou?rite)?)\s+(?P<s>[a-z][\w ]{0,28}?)\s+(?:is|are)\s+" + _VALUE,
       "my fav"),
    _r("habit", r"\bi\s+(?P<s>usually|always|often|normally|never|sometimes|rarely|typically)\s+"
                 + _VALUE, "usually", "always", "often", "normally", "never", "sometimes", "rarely",
       "typically"),
    _r("habit", r"\b(?P<s>every (?:morning|day|night|evening|week|weekend|sunday|monday|saturday))"
                 r",?\s+i\s+" + _VALUE, "every "),
    _r("relative", r"(?i:\bmy (?P<s>" + _RELATIVES + r")(?:'s name is| is called| is named))\s+" + _NAME,
       "'s name is", " is called", " is named", name=True, flags=0),
    _r("have", r"\bi (?:have|'ve got|have got)\s+(?P<v>(?:an?|two|three|four|\d+)\s+[^.,;!?\n]+)",
       "i have", "i 've got"),
    _r("language", r"\bi speak\s+" + _VALUE, "i speak"),
    _r("plays", r"\bi play\s+(?:the\s+)?" + _VALUE, "i play"),
)
_NEEDED = frozenset(w for rule in _PATTERNS for w in rule.need)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


def extract_facts(text: str) -> list[Extracted]:
    """Every fact a message states about its writer, in the order they appear, deduplicated."""
    found: list[Extracted] = []
    for sentence in _SENTENCE.findall(text):
        if sentence.rstrip().endswith("?") or _hypothetical(sentence):
            continue  # "do I like jazz?", "if I lived in Rome" state nothing
        for item in _sentence_facts(sentence.strip()):
            if item not in found:
                found.append(item)
    return found


_HYPOTHETICAL = re.compile(r"\s*(?:if|when|maybe|perhaps|do|does|did|would|could)\b", re.I)


def _hypothetical(sentence: str) -> bool:
    return _HYPOTHETICAL.match(sentence) is not None


def _rules_for(sentence: str) -> tuple[_Rule, ...] | list[_Rule]:
    """The rules that may match ``sentence``: on ASCII text, those whose words it has."""
    if not sentence.isascii():
        return _PATTERNS  # IGNORECASE matches more than lower() there ("K" for k): try all
    low = sentence.lower()
    present = {w for w in _NEEDED if w in low}
    return [rule for rule in _PATTERNS if not present.isdisjoint(rule.need)]


def _sentence_facts(sentence: str) -> list[Extracted]:
    hits: list[tuple[int, Extracted]] = []
    for rule in _rules_for(sentence):
        for m in rule.pattern.finditer(sentence):
            value = _clean_name(m["v"]) if rule.name else clean_value(m["v"])
            subject = (m.groupdict().get("s") or "").strip().lower()
            if value and (rule.kind != "identity" or _is_identity(value)):
                hits.append((m.start(), Extracted(rule.kind, value, subject)))
    hits.sort(key=lambda h: h[0])
    return [h[1] for h in hits]


def _is_identity(value: str) -> bool:
    # "I'm a bit tired" is a mood, not who someone is.
    return not re.match(r"(?:bit|little|lot|tad|fan of)\b", value, re.I)


def _clean_name(raw: str) -> str:
    words = [w for w in raw.split() if w.lower() not in {"and", "but", "from", "in", "i"}]
    name = " ".join(words[:2]).strip("'-")
    if not name or name.split()[0].lower() in _NOT_NAMES or name.lower() in _VAGUE:
        return ""
    return name[:1].upper() + name[1:]


def clean_value(raw: str) -> str:
    """Trim a captured phrase to the thing itself, in the second person ("my dog" -> "your dog")."""
    value = _CUT.sub("", raw.strip())
    value = re.sub(r"^(?:really|very|so|the fact that)\s+", "", value, flags=re.I).strip(" '\"-")
    value = _TRAILING.sub("", value)
    words = value.split()
    if not words or len(words) > MAX_WORDS or value.lower() in _VAGUE:
        return ""
    return " ".join(second_person(words))


def second_person(words: list[str]) -> list[str]:
    """Swap first-person words so a fact can be said back: "walk my dog" -> "walk your dog"."""
    out = []
    for word in words:
        swapped = _SWAP.get(word.lower())
        out.append(swapped if swapped is not None else word)
    return out
