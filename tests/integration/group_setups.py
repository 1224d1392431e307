"""Group states the node tests start from, made with the real protocol and store."""

from __future__ import annotations

from nacl.signing import SigningKey

from p2pchat.crypto.identity import Identity
from p2pchat.protocol import group_state as gs
from p2pchat.protocol.group_members import Member, MemberKind
from p2pchat.store import Profile
from p2pchat.store.records import GroupState, StoredGroup


def join_anns_book_club(profile: Profile) -> bytes:
    """The profile's owner ("me") is a member of "book club", run by another admin
    (ann, not me): stored as a node that joined it would hold it. Returns ann's key."""
    me = Identity(profile.identity.seed)
    admin = SigningKey.generate()
    sent = gs.create(admin, "ann", "book club", [Member(MemberKind.LAN, me.public_key, "me")])
    profile.groups.save(
        StoredGroup(sent.state.group_id, "book club", bytes(admin.verify_key), 1,
                    sent.encoded, 1, GroupState.ACTIVE, 0)
    )  # fmt: skip
    return bytes(admin.verify_key)
