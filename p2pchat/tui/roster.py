"""Who is around and who we talk to: the state behind the sidebar, built from events.

Pure: ``apply`` takes a node event and says what changed; nothing here draws
or talks to the node. Conversations are keyed by their *label*: a contact's
peer id, a guest's ``guest:<id>`` (the ``peer_id`` of MessageEvent), or a group's
``group:<hex>`` (its conversation id, the ``conversation`` of MessageEvent).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

from p2pchat.control.api import ContactView, GroupView
from p2pchat.node.events import (
    ContactAccepted,
    ContactRejected,
    ContactRequestReceived,
    EventsDropped,
    GroupChanged,
    GuestJoined,
    GuestLeft,
    GuestPath,
    GuestWaiting,
    MessageEvent,
    NodeEvent,
    PeerFound,
    PeerLost,
    SessionChanged,
)


class Change(Enum):
    NOTHING = "nothing"
    SIDEBAR = "sidebar"  # redraw the sidebar
    CONTACTS = "contacts"  # ask the node for the contact list again, then redraw
    GROUPS = "groups"  # ask the node for the groups again, then redraw


@dataclass(frozen=True)
class LanPeer:
    peer_id: str
    name: str
    is_contact: bool


@dataclass(frozen=True)
class Guest:
    label: str  # "guest:<id>"
    name: str
    state: str  # "waiting" | "joined" | "left"
    invite_id: str
    safety_number: str | None = None
    path: str | None = None  # "direct" | "turn" | "relay"


@dataclass
class Roster:
    peers: dict[str, LanPeer] = field(default_factory=dict)  # on the LAN now, by peer id
    contacts: dict[str, ContactView] = field(default_factory=dict)  # by peer id
    sessions: dict[str, str] = field(default_factory=dict)  # peer id → "connecting" | "open"
    guests: dict[str, Guest] = field(default_factory=dict)  # by label
    groups: dict[str, GroupView] = field(default_factory=dict)  # by "group:<hex>"
    unread: dict[str, int] = field(default_factory=dict)  # by conversation label

    # -- what the sidebar shows ------------------------------------------------

    def requests(self) -> list[ContactView]:
        return self._contacts_in("pending_incoming")

    def accepted(self) -> list[ContactView]:
        return self._contacts_in("accepted", "pending_outgoing")

    def strangers(self) -> list[LanPeer]:
        """Peers on the LAN who are not (yet) contacts of any kind."""
        known = {c.peer_id for c in self.contacts.values() if c.state != "rejected"}
        peers = [p for p in self.peers.values() if p.peer_id not in known]
        return sorted(peers, key=lambda p: p.name.lower())

    def guest_list(self) -> list[Guest]:
        return sorted(self.guests.values(), key=lambda g: (g.state == "left", g.name.lower()))

    def group_list(self) -> list[GroupView]:
        """Active groups first, then the ones I left or was removed from."""
        return sorted(self.groups.values(), key=lambda g: (g.state != "active", g.name.lower()))

    def member_online(self, peer: str, *, me: bool) -> bool:
        """A group member is online when a session with them is open (I always am)."""
        if me:
            return True
        if peer in self.guests:
            return self.guests[peer].state == "joined"
        return self.session(peer) == "open"

    def online(self, peer: str) -> bool:
        return peer in self.peers

    def session(self, peer: str) -> str:
        return self.sessions.get(peer, "none")

    def name_of(self, label: str) -> str:
        if label in self.contacts:
            return self.contacts[label].name
        if label in self.guests:
            return self.guests[label].name
        if label in self.groups:
            return self.groups[label].name
        if label in self.peers:
            return self.peers[label].name
        return label

    def total_unread(self) -> int:
        return sum(self.unread.values())

    # -- changes -----------------------------------------------------------------

    def set_contacts(self, views: list[ContactView]) -> None:
        self.contacts = {v.peer_id: v for v in views}

    def set_groups(self, views: list[GroupView]) -> None:
        self.groups = {v.conversation: v for v in views}

    def mark_read(self, label: str) -> bool:
        return self.unread.pop(label, 0) > 0

    def count_unread(self, label: str) -> None:
        self.unread[label] = self.unread.get(label, 0) + 1

    def apply(self, event: NodeEvent) -> Change:
        if isinstance(event, PeerFound):
            self.peers[event.peer_id] = LanPeer(event.peer_id, event.name, event.is_contact)
            return Change.CONTACTS  # "online" changes in the contact list too
        if isinstance(event, PeerLost):
            self.peers.pop(event.peer_id, None)
            self.sessions.pop(event.peer_id, None)
            return Change.CONTACTS
        if isinstance(event, EventsDropped):  # the present state follows: start from it
            self.peers.clear()
            self.sessions.clear()
            return Change.CONTACTS
        if isinstance(event, ContactRequestReceived | ContactAccepted | ContactRejected):
            return Change.CONTACTS
        if isinstance(event, GroupChanged):
            return Change.GROUPS  # the member list is the node's: ask for it
        if isinstance(event, SessionChanged):
            return self._session_changed(event)
        if isinstance(event, GuestWaiting):
            self.guests[event.peer_id] = Guest(
                event.peer_id, event.name, "waiting", event.invite_id
            )
            return Change.SIDEBAR
        if isinstance(event, GuestJoined):
            self.guests[event.peer_id] = Guest(
                event.peer_id, event.name, "joined", event.invite_id,
                event.safety_number, event.path,
            )  # fmt: skip
            return Change.SIDEBAR
        if isinstance(event, GuestPath):
            guest = self.guests.get(event.peer_id)
            if guest is not None:
                self.guests[event.peer_id] = replace(guest, path=event.path)
            return Change.SIDEBAR
        if isinstance(event, GuestLeft):
            guest = self.guests.get(event.peer_id)
            if guest is not None:
                self.guests[event.peer_id] = replace(guest, state="left")
            return Change.SIDEBAR
        if isinstance(event, MessageEvent):
            return Change.NOTHING  # unread counts are the screen's call (what is in view)
        return Change.NOTHING

    def _session_changed(self, event: SessionChanged) -> Change:
        if event.peer_id.startswith("guest:"):
            return Change.NOTHING  # GuestJoined / GuestLeft tell the guest's story
        if event.state == "closed":
            self.sessions.pop(event.peer_id, None)
        else:
            self.sessions[event.peer_id] = event.state
        return Change.SIDEBAR

    def _contacts_in(self, *states: str) -> list[ContactView]:
        chosen = [c for c in self.contacts.values() if c.state in states]
        return sorted(chosen, key=lambda c: c.name.lower())
