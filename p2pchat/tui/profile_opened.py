"""The message the create and unlock screens send with the open profile.

They are the app's first (default) screen, which cannot be dismissed: the app
takes the profile from this message and puts the main screen over them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from p2pchat.store import Profile


class ProfileOpened(Message):
    def __init__(self, profile: Profile) -> None:
        super().__init__()
        self.profile = profile
