"""The sidebar: a visible Start chat button, then requests, contacts, groups,
guests and the LAN peers who are not contacts yet, each with its unread count.

One OptionList (arrows, Enter, or a click); option ids say what a row is:
``c:`` contact, ``r:`` request, ``k:`` group (``k:group:<hex>``), ``g:`` guest,
``p:`` LAN peer.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Button, OptionList
from textual.widgets.option_list import Option

from p2pchat.tui.roster import Roster
from p2pchat.tui.text_format import one_line

NAME_WIDTH = 20


class Sidebar(Vertical):
    DEFAULT_CSS = """
    Sidebar { width: 40%; max-width: 36; min-width: 28; height: 1fr; border-right: vkey $foreground 30%; }
    Sidebar #start-chat { width: 100%; margin: 0 1 1 1; }
    Sidebar OptionList { height: 1fr; border: none; padding: 0; }
    """

    def compose(self) -> ComposeResult:
        yield Button("Start chat  (s)", id="start-chat", variant="primary")
        yield OptionList(id="roster")

    @property
    def options(self) -> OptionList:
        return self.query_one("#roster", OptionList)

    def show(self, roster: Roster, current: str | None) -> None:
        """Redraw from ``roster``; the highlighted row stays where it was."""
        options = self.options
        keep = options.highlighted_option.id if options.highlighted_option else None
        rows = list(_rows(roster, current))
        options.set_options(rows)
        ids = [row.id for row in rows if not row.disabled]
        for kind in "ck":  # else the conversation in view
            if keep not in ids and f"{kind}:{current}" in ids:
                keep = f"{kind}:{current}"
        target = keep if keep in ids else None
        if target is None and ids:
            target = ids[0]
        if target is not None:
            options.highlighted = options.get_option_index(target)


def _rows(roster: Roster, current: str | None) -> list[Option]:
    rows: list[Option] = []
    requests = roster.requests()
    if requests:
        rows.append(_heading("Contact requests", "h:requests"))
        for view in requests:
            line = Text("  ⚑ ", style="bold yellow")
            line.append(_name(view.name))
            line.append("  Enter: answer", style="dim")
            rows.append(Option(line, id=f"r:{view.peer_id}"))
    rows.append(_heading("Contacts", "h:contacts"))
    contacts = roster.accepted()
    if not contacts:
        rows.append(Option(Text("  none yet: pick a peer below", style="dim"), disabled=True))
    for view in contacts:
        rows.append(_contact_row(roster, view.peer_id, view.name, view.state, view.verified,
                                 current))  # fmt: skip
    groups = roster.group_list()
    if groups:
        rows.append(_heading("Groups", "h:groups"))
    for group in groups:
        active = group.state == "active"
        line = Text("  # ", style="cyan" if active else "dim")
        line.append(_name(group.name), style="bold" if group.conversation == current else "")
        if active:
            online = sum(roster.member_online(m.peer_id, me=m.me) for m in group.members)
            line.append(f"  {online}/{len(group.members)}", style="dim")
        else:
            line.append("  left" if group.state == "left" else "  removed", style="dim")
        _append_unread(line, roster.unread.get(group.conversation, 0))
        rows.append(Option(line, id=f"k:{group.conversation}"))
    guests = roster.guest_list()
    if guests:
        rows.append(_heading("Guests", "h:guests"))
        for guest in guests:
            mark, style = {
                "waiting": ("?", "bold yellow"),
                "joined": ("●", "green"),
                "left": ("○", "dim"),
            }[guest.state]
            line = Text(f"  {mark} ", style=style)
            line.append(_name(guest.name), style="bold" if guest.label == current else "")
            if guest.state == "waiting":
                line.append("  waiting: Enter", style="yellow")
            _append_unread(line, roster.unread.get(guest.label, 0))
            rows.append(Option(line, id=f"g:{guest.label}"))
    rows.append(_heading("On the LAN", "h:lan"))
    strangers = roster.strangers()
    if not strangers:
        rows.append(Option(Text("  looking for peers…", style="dim"), disabled=True))
    for peer in strangers:
        line = Text("  + ", style="cyan")
        line.append(_name(peer.name))
        line.append(f"  {peer.peer_id[:9]}", style="dim")
        rows.append(Option(line, id=f"p:{peer.peer_id}"))
    return rows


def _contact_row(
    roster: Roster, peer: str, name: str, state: str, verified: bool, current: str | None
) -> Option:
    session = roster.session(peer)
    if session == "open":
        mark, style = "●", "green"
    elif session == "connecting":
        mark, style = "◐", "yellow"
    elif roster.online(peer):
        mark, style = "○", "green"
    else:
        mark, style = "○", "dim"
    line = Text(f"  {mark} ", style=style)
    line.append(_name(name), style="bold" if peer == current else "")
    if verified:
        line.append(" ✓", style="green")
    if state == "pending_outgoing":
        line.append("  asked", style="dim")
    _append_unread(line, roster.unread.get(peer, 0))
    return Option(line, id=f"c:{peer}")


def _heading(title: str, option_id: str) -> Option:
    return Option(Text(title, style="bold underline"), id=option_id, disabled=True)


def _name(name: str) -> str:
    return one_line(name, NAME_WIDTH)


def _append_unread(line: Text, count: int) -> None:
    if count:
        line.append(f"  {min(count, 999)}", style="bold reverse")
