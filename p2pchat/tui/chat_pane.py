"""One conversation: who it is with, its messages with their delivery state, the input.

Our messages show ``queued`` (waiting in the outbox for the contact to come
online), ``sent`` (on the wire, no receipt yet) or ``delivered`` (the peer's
receipt came back). In a group, once receipts came, ``✓ 2/3``: how many of the
other LAN members on the list now have it.

RichLog wraps a line once, when it is written, at no less than its
``min_width`` and no more than the console's width; ChatLog wraps at the width
there is and writes its lines again when that width changes (a resized terminal).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.events import Resize
from textual.message import Message
from textual.widgets import Input, RichLog, Static

from p2pchat.protocol.frames import MAX_BODY_BYTES
from p2pchat.tui.conversation_log import ChatLine
from p2pchat.tui.text_format import clock_time, one_line, terminal_safe

SENDER_WIDTH = 12
STATE_LABELS = {"queued": ("· queued", "yellow"), "sent": ("✓ sent", "dim"),
                "delivered": ("✓✓ delivered", "green")}  # fmt: skip

# One paragraph per point, no line breaks of its own: it wraps to the pane's width.
WELCOME = "\n".join(
    [
        "Welcome to p2pchat.",
        "",
        '• Peers on your network appear on the left under "On the LAN": pick one and press'
        " Enter to ask them to be a contact.",
        "• Press s (or the Start chat button) to invite someone with a browser: a link and a"
        " QR code for their phone or laptop, nothing to install.",
        "• Enter on a contact opens the conversation. ? shows every key.",
    ]
)


class ChatLog(RichLog):
    """The conversation's lines, wrapped to the pane's width whatever it becomes."""

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id, wrap=True, markup=False, highlight=False, auto_scroll=True,
                         min_width=1)  # fmt: skip
        self._texts: list[Text] = []
        self._wrapped_at = 0  # the width the lines were last written at; 0: not yet

    def show(self, texts: list[Text]) -> None:
        self._texts = texts
        if self._wrapped_at:  # else the first Resize writes them
            self._write_all()

    def on_resize(self, event: Resize) -> None:
        if event.size.width != self._wrapped_at:
            self._wrapped_at = event.size.width
            self._write_all()

    def _write_all(self) -> None:
        self.clear()
        # An explicit width: left to itself, RichLog measures against the app's
        # console, whose width is not the terminal's (80 unless COLUMNS says).
        width = self.scrollable_content_region.width or None
        for text in self._texts:
            self.write(text, width=width)


class ChatPane(Vertical):
    DEFAULT_CSS = """
    ChatPane { width: 1fr; height: 1fr; }
    ChatPane #chat-title { height: auto; max-height: 3; padding: 0 1; background: $boost; text-style: bold; }
    ChatPane #chat-log { height: 1fr; padding: 0 1; }
    ChatPane #chat-input { dock: bottom; }
    """

    class Send(Message):
        def __init__(self, label: str, text: str) -> None:
            super().__init__()
            self.label = label
            self.text = text

    def __init__(self) -> None:
        super().__init__()
        self.label: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("No conversation open"), id="chat-title")
        yield ChatLog(id="chat-log")
        yield Input(
            placeholder="Pick a contact on the left first",
            id="chat-input",
            max_length=MAX_BODY_BYTES,
            disabled=True,
        )

    def on_mount(self) -> None:
        self.query_one(ChatLog).show([Text(WELCOME)])

    @property
    def input(self) -> Input:
        return self.query_one("#chat-input", Input)

    def open(self, label: str, name: str, *, closed: str | None = None) -> None:
        """``closed``: why nothing can be sent here (a group I left); None: it can."""
        self.label = label
        self.input.disabled = closed is not None
        self.input.placeholder = closed or (
            f"Message {one_line(name, 30)}: Enter sends, Esc goes back"
        )

    def show_title(self, title: Text) -> None:
        self.query_one("#chat-title", Static).update(title)

    def show_lines(
        self,
        lines: list[ChatLine],
        *,
        me: str,
        keep_history: bool,
        members: frozenset[str] | None = None,
    ) -> None:
        """``members``: in a group, the other LAN members' peer ids (for ``✓ 2/3``)."""
        if not lines:
            hint = "No messages yet." if keep_history else "No messages yet (history is off)."
            self.query_one(ChatLog).show([Text(hint, style="dim")])
            return
        self.query_one(ChatLog).show([render_chat_line(line, me, members) for line in lines])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text or self.label is None:
            return
        self.input.value = ""
        self.post_message(self.Send(self.label, text))


def render_chat_line(line: ChatLine, me: str, members: frozenset[str] | None = None) -> Text:
    out = line.direction == "out"
    text = Text(clock_time(line.timestamp_ms) + "  ", style="dim")
    if line.direction == "notice":
        style = "bold yellow" if line.state == "warning" else "italic"
        text.append(("⚠ " if line.state == "warning" else "— ") + terminal_safe(line.text), style)
        return text
    sender = me if out else line.sender
    text.append(one_line(sender, SENDER_WIDTH).ljust(SENDER_WIDTH), style="bold cyan" if out
                else "bold magenta")  # fmt: skip
    text.append("  ")
    body = "\n".join(terminal_safe(part) for part in line.text.splitlines()) or ""
    text.append(body)
    if out:
        label, style = STATE_LABELS.get(line.state, (line.state, "dim"))
        if members is not None and line.reached:
            # Members now: one removed since does not count, nor make it 3/2.
            have = len(line.reached & members)
            label, style = f"✓ {have}/{len(members)}", "green" if have == len(members) else "dim"
        text.append(f"  {label}", style=style)
    return text
