"""``/``: full-text search over the encrypted history (``Profile.search``).

Every word must match; ``word*`` matches a prefix. Enter on a result opens
that conversation.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from p2pchat.store import StoreError
from p2pchat.tui.history import MARK_END, MARK_START, HistoryReader
from p2pchat.tui.text_format import day_and_time, one_line, terminal_safe

MAX_RESULTS = 100


class SearchScreen(ModalScreen[str | None]):
    """Dismissed with the label of the conversation to open, or None."""

    DEFAULT_CSS = """
    SearchScreen { align: center middle; }
    SearchScreen > Vertical { width: 100; max-width: 100%; height: 90%; padding: 0 1;
                              border: thick $accent; background: $surface; }
    SearchScreen #search-status { height: 1; color: $text-muted; }
    SearchScreen OptionList { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("down", "to_results", "Results", show=False),
    ]

    def __init__(self, history: HistoryReader, names: dict[str, str]) -> None:
        super().__init__()
        self._history = history
        self._names = names  # conversation label → display name
        self._labels: dict[str, str] = {}  # option id → conversation label

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Search history", style="bold"))
            yield Input(placeholder="words to find (word* for a prefix), Enter searches",
                        id="search-input")  # fmt: skip
            yield Static("", id="search-status")
            yield OptionList(id="search-results")

    def on_mount(self) -> None:
        if not self._history.keep_history:
            self._status("History is off: only what was stored while it was on is searched.")
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.run_search(event.value)

    def run_search(self, query: str) -> None:
        results = self.query_one(OptionList)
        results.clear_options()
        self._labels.clear()
        if not query.strip():
            self._status("")
            return
        try:
            hits = self._history.search(query, limit=MAX_RESULTS)
        except StoreError as exc:
            self._status(exc.user_message)
            return
        options = []
        for index, hit in enumerate(hits):
            message = hit.message
            label = self._history.label_of(message.conversation_id)
            conversation = self._names.get(label) or label
            line = Text(day_and_time(message.timestamp_ms) + "  ", style="dim")
            line.append(one_line(conversation, 14).ljust(14), style="bold")
            line.append("  ")
            line.append(one_line(message.sender, 14) + ": ", style="cyan")
            line.append_text(_snippet(hit.snippet))
            option_id = f"hit:{index}"
            self._labels[option_id] = label
            options.append(Option(line, id=option_id))
        results.add_options(options)
        found = f"{len(hits)} message(s)" + (" (the newest shown)" if len(hits) >= MAX_RESULTS
                                             else "")  # fmt: skip
        self._status(found + ("  ·  ↓ then Enter opens its conversation" if hits else ""))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self._labels.get(event.option.id or ""))

    def action_to_results(self) -> None:
        results = self.query_one(OptionList)
        if results.option_count and not results.has_focus:
            results.focus()
            results.highlighted = 0

    def action_close(self) -> None:
        self.dismiss(None)

    def _status(self, text: str) -> None:
        self.query_one("#search-status", Static).update(Text(text))


def _snippet(snippet: str) -> Text:
    """The store's snippet with matches (between the private marks) highlighted."""
    text = Text()
    rest = " ".join(snippet.split())
    while rest:
        before, start, after = rest.partition(MARK_START)
        text.append(terminal_safe(before))
        if not start:
            break
        match, _, rest = after.partition(MARK_END)
        text.append(terminal_safe(match), style="bold reverse")
    return text
