"""How chatty the collective is: triggers and guards, one frozen value per runtime.

The defaults are what ``os1 serve`` runs: on, but conservative — a handful of collective
turns a minute even with every persona busy. Tests pass small waits and a seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from personas.collective.guards import GuardConfig


@dataclass(frozen=True)
class CollectiveConfig:
    enabled: bool = True
    guards: GuardConfig = field(default_factory=GuardConfig)
    seed: int | None = None  # None: a fresh RNG per persona; an int makes choices repeatable
    # consultation: a person's topic outside the persona's expertise, and a peer who knows it
    consult: bool = True
    consult_questions: float = 1.0  # chance to consult when the message is a question
    consult_remarks: float = 0.0  # ... when it is not
    consult_wait: float = 4.0  # seconds the person's reply may wait for the collective
    max_invites: int = 2  # peers invited to one consultation
    # reflection: now and then, share the topics of recent conversations in collective:all
    reflect: bool = True
    reflect_every: float = 600.0  # mean seconds between reflections (jittered ±50%)
    reply_chance: float = 0.5  # a peer whose interests fit answers a reflection
    # greeting: coming online is announced; peers may welcome
    greet: bool = True
    greet_delay: tuple[float, float] = (0.5, 3.0)  # seconds after coming online
    welcome_chance: float = 0.6
    welcome_period: float = 1800.0  # at most one greeting / one welcome per peer in this time
    # speaking
    think: tuple[float, float] = (0.4, 1.2)  # seconds before a response: a pace people can follow
    answer_patience: float = 2.0  # wait this long for a cooldown to pass when asked directly
    stale_after: float = 60.0  # messages older than this (a replay after a reconnect) get no answer
    max_responding: int = 8  # responses being prepared at once, per persona; more are dropped
    sweep_every: float = 1.0  # seconds between checks for expired threads and rooms to leave


OFF = CollectiveConfig(enabled=False)
