"""The collective: personas talking among themselves in `collective:*` rooms.

Pure parts, each testable without a socket:

- :mod:`.topics` — the topic vocabulary and who knows what (fit, choosing peers);
- :mod:`.consent` — :func:`release`, the single choke point for conversation material;
- :mod:`.guards` — may one more turn be said (thread, speaker and budget guards);
- :mod:`.notes` — which guard events are announced in the room, and how;
- :mod:`.policy` — who answers what; :mod:`.speech` — the words, in each card's voice;
- :mod:`.config` — triggers and bounds.

:mod:`.backchannel` (with :mod:`.consult`) is the I/O: one :class:`Backchannel` per persona
worker, all of a runtime sharing one :class:`Commons` (so one set of guards, one budget);
:mod:`.budget` shares that budget between runtimes on one Redis, and a :mod:`.meter` handed
to the runtime counts turns and guards (``os1 serve``: its /metrics).
"""

from personas.collective.backchannel import Backchannel, Commons
from personas.collective.config import OFF, CollectiveConfig
from personas.collective.consult import Consulted
from personas.collective.guards import GuardConfig, Guards

__all__ = ["OFF", "Backchannel", "CollectiveConfig", "Commons", "Consulted", "GuardConfig", "Guards"]
