"""What the terminal chat prints for each hub event: pure, no I/O, unit-tested.

``ChatRenderer.render(event)`` returns the exact text to write (possibly empty, possibly
without a trailing newline while a reply streams in). Streaming: ``delta`` chunks of a
stream print as they come on one line; the final ``msg`` with the same ``stream`` only
finishes that line (its text is the whole reply, so only a missing tail is printed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Frame = dict[str, Any]

CLEAR_LINE = "\r\x1b[K"
DIM, RESET = "\x1b[2m", "\x1b[0m"


def display_name(who: Any) -> str:
    if isinstance(who, dict):
        return str(who.get("name") or who.get("id") or "?")
    return str(who) if who else "?"


@dataclass
class ChatRenderer:
    """Render state for one terminal; ``tty`` enables the transient typing line."""

    me: str | None = None
    tty: bool = True
    echo_own: bool = False  # print our own live messages (useful when stdin is a pipe)
    own_cids: set[str] = field(default_factory=set)
    _stream: str | None = None  # stream whose line is open (no newline yet)
    _streamed: str = ""
    _typing: bool = False  # a typing indicator is on screen (tty only)

    # -- public ---------------------------------------------------------------------
    def note_sent(self, cid: str) -> None:
        """Our own message with this cid needs no echo: the user just typed it."""
        self.own_cids.add(cid)

    @property
    def streaming(self) -> bool:
        return self._stream is not None

    def render(self, event: Frame) -> str:
        kind = event.get("t")
        if kind == "delta":
            return self._delta(event)
        if kind == "msg":
            return self._msg(event)
        if kind == "typing":
            return self._show_typing(event)
        return self._line(self._notice(event))

    def finish(self) -> str:
        """Close whatever line is open (a stream cut short, a typing indicator)."""
        out = self._clear()
        if self._stream is not None:
            self._stream, self._streamed = None, ""
            out += "\n"
        return out

    def is_own(self, event: Frame) -> bool:
        return self._is_from_me(event.get("from"))

    def render_joined(self, joined: Frame, shown: int) -> str:
        room = joined.get("room", "?")
        note = f" — {shown} earlier message{'s' if shown != 1 else ''}" if shown else ""
        if joined.get("gap"):
            note += " (older ones are no longer kept)"
        return self._line(self._dim(f"[joined {room}{note}]"))

    # -- events ---------------------------------------------------------------------
    def _delta(self, event: Frame) -> str:
        stream, text = str(event.get("stream", "")), str(event.get("text", ""))
        if stream == self._stream:
            self._streamed += text
            return text
        out = self._clear() + ("\n" if self._stream is not None else "")
        self._stream, self._streamed = stream, text
        return f"{out}{display_name(event.get('from'))}: {text}"

    def _msg(self, event: Frame) -> str:
        text, who = str(event.get("text", "")), event.get("from")
        stream = event.get("stream")
        if stream is not None and str(stream) == self._stream:
            streamed, self._stream, self._streamed = self._streamed, None, ""
            if text.startswith(streamed):
                return text[len(streamed):] + "\n"
            # Some deltas were lost (e.g. across a reconnect): the msg is authoritative.
            return f"\n{display_name(who)}: {text}\n"
        if self.is_own(event):
            if event.get("cid") in self.own_cids and not self.echo_own:
                return self._clear()
            return self._line(f"You: {text}")
        return self._line(f"{display_name(who)}: {text}")

    def _show_typing(self, event: Frame) -> str:
        who = event.get("from")
        if not self.tty or self.streaming or self._is_from_me(who):
            return ""
        out = self._clear() + f"{DIM}{display_name(who)} is typing…{RESET}"
        self._typing = True
        return out

    def _notice(self, event: Frame) -> str:
        kind = event.get("t")
        if kind == "presence":
            parts = [f"{p} joined" for p in event.get("joined") or [] if p != self.me]
            parts += [f"{p} left" for p in event.get("left") or [] if p != self.me]
            return self._dim(f"[{', '.join(parts)}]") if parts else ""
        if kind == "reconnecting":
            return self._dim("[reconnecting…]") if event.get("attempt") == 1 else ""
        if kind == "reconnected":
            rooms = event.get("rooms") or {}
            lost = [r for r, info in rooms.items() if isinstance(info, dict) and info.get("reset")]
            note = f" (the hub lost earlier history of {', '.join(lost)})" if lost else ""
            return self._dim(f"[reconnected{note}]")
        if kind == "error":
            return f"[error {event.get('code', '?')}: {event.get('message', '')}]"
        if kind == "invited":
            return self._dim(f"[invited to {event.get('room', '?')}]")
        return ""

    # -- helpers --------------------------------------------------------------------
    def _line(self, text: str) -> str:
        """A whole line, closing an open stream line or typing indicator first."""
        if not text:
            return ""
        out = self._clear()
        if self._stream is not None:
            out += "\n"  # another speaker interrupts the stream: keep its line intact
            self._stream, self._streamed = None, ""
        return f"{out}{text}\n"

    def _clear(self) -> str:
        if self._typing:
            self._typing = False
            return CLEAR_LINE
        return ""

    def _dim(self, text: str) -> str:
        return f"{DIM}{text}{RESET}" if self.tty else text

    def _is_from_me(self, who: Any) -> bool:
        return isinstance(who, dict) and self.me is not None and who.get("id") == self.me
