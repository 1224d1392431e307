"""node/files.py on a real profile and a real disk, links faked: the receiving and
sending sides' ordering under link drops, cancels and changed sources.

The node is not started (no sockets, no mDNS); a fake link stands for a session with
files: what the module sends is recorded, and chunks come from the real sans-I/O
sender (protocol/file_transfer.py). Real daemons are in tests/lan/test_lan_files.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from nacl.signing import SigningKey

from p2pchat.crypto.identity import peer_id
from p2pchat.node import Node, NodeConfig, file_io
from p2pchat.node import files as files_module
from p2pchat.node.core_protocol import ConversationRef
from p2pchat.node.events import FileProgress
from p2pchat.node.links import PeerLink
from p2pchat.protocol.events import FileFrameReceived
from p2pchat.protocol.file_transfer import OutgoingTransfer
from p2pchat.protocol.file_wire import (
    BLOCK_BYTES,
    ControlKind,
    FileControl,
    FileOffer,
    decode_control,
    decode_offer,
)
from p2pchat.protocol.frames import FrameType
from p2pchat.store import (
    KdfLimits,
    Profile,
    StoreError,
    contact_conversation_id,
    create_profile,
)
from p2pchat.store.records import Contact, TransferState, TrustState

FAST = KdfLimits(opslimit=1, memlimit=8192)


class _Session:
    files = True
    groups = False

    def send_file_offer(self, payload: bytes, now_ms: int, *, message_id: bytes) -> bytes:
        return b"O" + message_id + payload

    def send_file_control(self, payload: bytes, now_ms: int) -> bytes:
        return b"C" + payload

    def send_receipt(self, message_id: bytes, now_ms: int) -> bytes:
        return b"R" + message_id


class _Link:
    """What node/files.py uses of a PeerLink with files."""

    def __init__(self, peer_key: bytes) -> None:
        self.session = _Session()
        self.peer_key = peer_key
        self.state = "open"
        self.sent: list[bytes] = []
        self.chunks: list[bytes] = []
        self.send_lock = asyncio.Lock()
        self.sent_ids: set[bytes] = set()
        self.file_chunk_handler: Callable[[PeerLink, bytes], None] | None = None
        self.chunk_path = "datachannel"
        self._closed = asyncio.Event()

    def send(self, data: bytes) -> None:
        if self.state != "open":
            from p2pchat.transport.errors import TransportError

            raise TransportError("closed")
        self.sent.append(data)

    async def async_send_file_chunk(self, data: bytes) -> None:
        self.chunks.append(data)
        await asyncio.sleep(0)

    async def async_drain(self) -> None:
        await asyncio.sleep(0)

    async def async_wait_closed(self) -> None:
        await self._closed.wait()

    def close(self, reason: str) -> None:
        self.state = "closed"
        self._closed.set()

    def controls(self) -> list[FileControl]:
        return [decode_control(d[1:]) for d in self.sent if d[:1] == b"C"]

    def kinds(self) -> list[ControlKind]:
        return [c.kind for c in self.controls()]


@pytest.fixture
def profile(tmp_path: Path) -> Profile:
    return create_profile(
        tmp_path / "me", "pw", name="me", identity_seed=os.urandom(32), kdf_limits=FAST
    )


@pytest.fixture
async def node(profile: Profile, tmp_path: Path) -> AsyncIterator[Node]:
    with profile:
        node = Node(profile, NodeConfig(data_dir=tmp_path / "me", downloads=tmp_path / "dl"))
        yield node
        node.files.stop()


@pytest.fixture
def seed() -> int:
    value = random.randrange(2**32)
    print(f"random seed: {value}")
    return value


def add_contact(profile: Profile, name: str) -> bytes:
    key = bytes(SigningKey.generate().verify_key)
    profile.upsert_contact(Contact(key, name, TrustState.ACCEPTED, verified=False, pinned_at_ms=0))
    return key


def ref_of(key: bytes) -> ConversationRef:
    return ConversationRef(contact_conversation_id(key), peer_id(key), "alice")


def open_link(node: Node, key: bytes) -> _Link:
    """A new session with ``key``: registered, then opened (resumes run)."""
    old = node.links.get(key)
    if old is not None:
        old.close("replaced")
    link = _Link(key)
    node.links[key] = cast(PeerLink, link)
    node.files.on_session_open(cast(PeerLink, link), ref_of(key))
    return link


class Upload:
    """The sending peer's side of one transfer, from the real sans-I/O sender."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.tid, self.key = os.urandom(16), os.urandom(32)
        digest = hashlib.blake2b(data, digest_size=32).digest()
        self.offer = FileOffer(len(data), BLOCK_BYTES, digest, self.key, "text/plain", "a.txt")
        self.out = OutgoingTransfer(self.tid, self.key, len(data), BLOCK_BYTES)

    def offer_to(self, node: Node, link: _Link) -> None:
        event = FileFrameReceived(FrameType.FILE_OFFER, self.tid, self.offer.encode())
        node.files.on_frame(cast(PeerLink, link), event, ref_of(link.peer_key))

    def send_all(self, link: _Link, first: int = 0) -> None:
        self.send_blocks(link, range(first, self.out.blocks))

    def send_blocks(self, link: _Link, indices: range) -> None:
        assert link.file_chunk_handler is not None
        for index in indices:
            block = self.data[index * BLOCK_BYTES : (index + 1) * BLOCK_BYTES]
            for chunk in self.out.chunks_of(index, block):
                link.file_chunk_handler(cast(PeerLink, link), chunk)


async def until(check: Callable[[], bool]) -> None:
    for _ in range(2000):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")


def saved_files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "dl").iterdir() if p.is_file())


class HashGate:
    """file_io.hash_file held until released: the whole-file hash "takes long"."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Semaphore(0)
        self.calls = 0
        self.release = threading.Event()
        real = file_io.hash_file

        def gated(path: Path, **kwargs: Any) -> bytes:
            self.calls += 1
            self.entered.release()
            self.release.wait(30)
            return real(path, **kwargs)

        monkeypatch.setattr(file_io, "hash_file", gated)

    async def wait_entered(self) -> None:
        await until(lambda: self.entered.acquire(blocking=False))


async def test_a_link_reopened_while_verifying_finishes_once_and_answers_done_on_the_new_link(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    key = add_contact(node.profile, "alice")
    upload = Upload(random.Random(seed).randbytes(BLOCK_BYTES + 1000))
    first = open_link(node, key)
    upload.offer_to(node, first)
    await until(lambda: ControlKind.ACCEPT in first.kinds())
    gate = HashGate(monkeypatch)
    upload.send_all(first)
    await gate.wait_entered()  # every block written: the whole-file hash runs
    second = open_link(node, key)  # the link dropped and came back meanwhile
    for _ in range(20):
        await asyncio.sleep(0)
    gate.release.set()
    await until(lambda: any(k in second.kinds() for k in (ControlKind.DONE, ControlKind.FAIL)))
    assert ControlKind.FAIL not in second.kinds(), f"{second.controls()} seed {seed}"
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert saved_files(tmp_path) == ["a.txt"], f"seed {seed}"
    assert (tmp_path / "dl" / "a.txt").read_bytes() == upload.data, f"seed {seed}"
    assert ControlKind.FAIL not in first.kinds() + second.kinds()
    held = node.profile.files.get(upload.tid)
    assert held is not None
    assert held.state is TransferState.DONE


def acked(link: _Link, tid: bytes) -> int:
    return max([c.value for c in link.controls() if c.kind is ControlKind.ACK], default=0)


def accepts(link: _Link) -> list[int]:
    return [c.value for c in link.controls() if c.kind is ControlKind.ACCEPT]


async def two_blocks_in(node: Node, seed: int) -> tuple[bytes, Upload, _Link, Path]:
    """A 4-block file offered and accepted, blocks 0 and 1 written and verified."""
    key = add_contact(node.profile, "alice")
    upload = Upload(random.Random(seed).randbytes(3 * BLOCK_BYTES + 5))
    first = open_link(node, key)
    upload.offer_to(node, first)
    await until(lambda: accepts(first) == [0])
    upload.send_blocks(first, range(2))
    await until(lambda: acked(first, upload.tid) == 2)
    held = node.profile.files.get(upload.tid)
    assert held is not None
    assert held.verified_blocks == 2
    assert held.partial_path is not None
    return key, upload, first, held.partial_path


@pytest.mark.parametrize(("damage", "resume_at"), [("missing", 0), ("short", 1)])
async def test_a_resume_never_zero_extends_a_lost_partial_file(
    node: Node, tmp_path: Path, seed: int, damage: str, resume_at: int
) -> None:
    key, upload, _, partial = await two_blocks_in(node, seed)
    if damage == "missing":
        partial.unlink()
    else:
        os.truncate(partial, BLOCK_BYTES + 100)  # half of block 1 lost (a crash, a disk)
    second = open_link(node, key)
    await until(lambda: accepts(second) != [])
    assert accepts(second) == [resume_at]
    assert partial.stat().st_size == resume_at * BLOCK_BYTES
    held = node.profile.files.get(upload.tid)
    assert held is not None
    assert held.verified_blocks == resume_at
    upload.send_all(second, resume_at)
    await until(lambda: ControlKind.DONE in second.kinds())
    assert (tmp_path / "dl" / "a.txt").read_bytes() == upload.data, f"seed {seed}"


async def test_a_file_placed_before_a_crash_is_done_at_the_resume(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    key, upload, first, partial = await two_blocks_in(node, seed)
    gate = HashGate(monkeypatch)
    upload.send_blocks(first, range(2, 4))
    await gate.wait_entered()
    # The crash: between the rename into place and DONE stored (the finish is cut short).
    for task in list(node.files._finishing.values()):
        task.cancel()
    gate.release.set()
    final = tmp_path / "dl" / "a.txt"
    files = node.profile.files
    files.set_state(upload.tid, TransferState.RECEIVING, now_ms=1, final_path=final)
    os.replace(partial, final)
    second = open_link(node, key)
    await until(lambda: second.kinds() != [])
    assert second.kinds() == [ControlKind.DONE]
    held = files.get(upload.tid)
    assert held is not None
    assert (held.state, held.final_path) == (TransferState.DONE, final)
    assert final.read_bytes() == upload.data, f"seed {seed}"
    assert saved_files(tmp_path) == ["a.txt"]


def control_frame(control: FileControl) -> FileFrameReceived:
    return FileFrameReceived(FrameType.FILE_CONTROL, control.transfer_id, control.encode())


async def offered(node: Node, source: Path) -> tuple[bytes, _Link, bytes]:
    """``source`` offered to alice while she is away; then her session, nothing sent yet."""
    key = add_contact(node.profile, "alice")
    view = await node.async_send_file("alice", str(source))
    tid = bytes.fromhex(view.transfer_id)
    await until(lambda: hashed(node, tid))
    link = _Link(key)
    link.file_chunk_handler = lambda _link, _data: None
    return key, link, tid


def hashed(node: Node, tid: bytes) -> bool:
    held = node.profile.files.get(tid)
    return held is not None and held.file_hash != bytes(32)


def accept_from(node: Node, link: _Link, tid: bytes, first: int) -> None:
    control = FileControl(ControlKind.ACCEPT, tid, first, "")
    node.files.on_frame(cast(PeerLink, link), control_frame(control), ref_of(link.peer_key))


def same_size_edit(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    if how == "in place":
        before = path.stat().st_mtime_ns
        path.write_bytes(bytes(data))
        os.utime(path, ns=(before + 10**9, before + 10**9))  # saved a second later
    else:  # an editor's save: a new file renamed over the old
        fresh = path.with_name(path.name + ".tmp")
        fresh.write_bytes(bytes(data))
        os.replace(fresh, path)


@pytest.mark.parametrize("how", ["in place", "by rename"])
async def test_a_same_size_edit_after_the_offer_is_never_sent_under_its_nonces(
    node: Node, tmp_path: Path, seed: int, how: str
) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(random.Random(seed).randbytes(6 * BLOCK_BYTES))
    _, link, tid = await offered(node, source)
    accept_from(node, link, tid, 0)
    await until(lambda: len(link.chunks) == 16)  # the first window: 4 blocks of 4 chunks
    same_size_edit(source, how)
    accept_from(node, link, tid, 0)  # a resume from block 0: the same nonces again
    await until(lambda: ControlKind.CANCEL in link.kinds())
    assert len(link.chunks) == 16, f"seed {seed}"
    (cancel,) = [c for c in link.controls() if c.kind is ControlKind.CANCEL]
    assert cancel.reason == "the file changed since it was offered"
    held = node.profile.files.get(tid)
    assert held is not None
    assert held.state is TransferState.FAILED


async def test_a_file_changed_while_it_is_hashed_is_not_offered(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(random.Random(seed).randbytes(BLOCK_BYTES))
    real = file_io.hash_file

    def edited_meanwhile(path: Path, **kwargs: Any) -> bytes:
        digest = real(path, **kwargs)
        same_size_edit(source, "in place")
        return digest

    monkeypatch.setattr(file_io, "hash_file", edited_meanwhile)
    key = add_contact(node.profile, "alice")
    view = await node.async_send_file("alice", str(source))
    tid = bytes.fromhex(view.transfer_id)
    await until(lambda: not node.files._hashing)
    held = node.profile.files.get(tid)
    assert held is not None
    assert held.state is TransferState.FAILED
    assert held.error is not None
    assert "changed while it was read" in held.error
    assert "\n" not in held.error
    assert node.profile.pending_outbox(contact_conversation_id(key)) == []


async def test_auto_accept_counts_the_room_promised_to_accepted_transfers(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    size = 4 * BLOCK_BYTES
    # Room for one of them, not two (fixed: other processes change the real figure).
    free = file_io.FREE_SPACE_MARGIN + size + size // 2
    monkeypatch.setattr(file_io, "free_bytes", lambda directory: free)
    key = add_contact(node.profile, "alice")
    link = open_link(node, key)
    first, second = Upload(rng.randbytes(size)), Upload(rng.randbytes(size))
    first.offer_to(node, link)
    second.offer_to(node, link)
    await until(lambda: accepts(link) != [])
    for _ in range(20):
        await asyncio.sleep(0.01)
    states = [node.profile.files.get(u.tid) for u in (first, second)]
    assert [s.state if s else None for s in states] == [
        TransferState.ACCEPTED, TransferState.OFFERED,
    ]  # fmt: skip
    assert [c.transfer_id for c in link.controls()] == [first.tid]


async def test_at_most_four_transfers_from_one_peer_move_at_once(
    node: Node, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    key = add_contact(node.profile, "alice")
    link = open_link(node, key)
    uploads = [Upload(rng.randbytes(1000 + n)) for n in range(6)]
    for upload in uploads:
        upload.offer_to(node, link)
    await until(lambda: len(accepts(link)) >= 4)
    for _ in range(20):
        await asyncio.sleep(0.01)
    accepted = [c.transfer_id for c in link.controls() if c.kind is ControlKind.ACCEPT]
    assert len(accepted) == 4  # the other two stay accepted, waiting
    for upload in uploads:
        held = node.profile.files.get(upload.tid)
        assert held is not None
        assert held.state is TransferState.ACCEPTED
    (done,) = [u for u in uploads if u.tid == accepted[0]]
    done.send_all(link)
    await until(lambda: len(accepts(link)) == 5)  # one ended: the next one starts
    moving = {c.transfer_id for c in link.controls() if c.kind is ControlKind.ACCEPT}
    for upload in uploads:
        if upload.tid in moving and upload is not done:
            upload.send_all(link)
    await until(lambda: len(accepts(link)) == 6)
    for upload in uploads:
        if upload.tid not in moving:
            upload.send_all(link)
    await until(lambda: link.kinds().count(ControlKind.DONE) == 6)
    assert sorted(saved_files(tmp_path)) == sorted(
        ["a.txt"] + [f"a ({n}).txt" for n in range(1, 6)]
    )


async def test_a_cancel_during_a_block_write_leaves_no_partial_file(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    key = add_contact(node.profile, "alice")
    upload = Upload(random.Random(seed).randbytes(2 * BLOCK_BYTES))
    link = open_link(node, key)
    upload.offer_to(node, link)
    await until(lambda: accepts(link) == [0])
    entered, release = threading.Semaphore(0), threading.Event()
    real = file_io.write_block

    def slow_write(path: Path, offset: int, data: bytes) -> None:
        entered.release()
        release.wait(30)
        real(path, offset, data)

    monkeypatch.setattr(file_io, "write_block", slow_write)
    upload.send_blocks(link, range(1))
    await until(lambda: entered.acquire(blocking=False))  # the write is in its thread
    await node.async_file_cancel(upload.tid.hex())
    release.set()
    for _ in range(50):
        await asyncio.sleep(0.01)
    assert list((tmp_path / "dl" / ".p2pchat-partial").iterdir()) == []
    assert link.kinds() == [ControlKind.ACCEPT, ControlKind.CANCEL]
    held = node.profile.files.get(upload.tid)
    assert held is not None
    assert held.state is TransferState.CANCELLED


async def test_at_start_partial_files_of_no_unfinished_transfer_are_deleted(
    node: Node, tmp_path: Path, seed: int
) -> None:
    key = add_contact(node.profile, "alice")
    link = open_link(node, key)
    upload = Upload(random.Random(seed).randbytes(2 * BLOCK_BYTES))
    upload.offer_to(node, link)
    await until(lambda: accepts(link) == [0])
    partials = tmp_path / "dl" / ".p2pchat-partial"
    live = partials / (upload.tid.hex() + ".part")
    orphan = partials / (os.urandom(16).hex() + ".part")
    orphan.write_bytes(b"left by a crash")
    other = partials / "notes.txt"  # not a name of ours: left alone
    other.write_bytes(b"")
    await node.files.async_start()
    assert sorted(p.name for p in partials.iterdir()) == sorted([live.name, other.name])


@pytest.mark.parametrize("step", ["hash_file", "claim_final_name"])
async def test_a_cancel_while_finishing_saves_nothing_and_says_nothing_more(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, step: str
) -> None:
    key = add_contact(node.profile, "alice")
    upload = Upload(random.Random(seed).randbytes(BLOCK_BYTES + 7))
    link = open_link(node, key)
    upload.offer_to(node, link)
    await until(lambda: accepts(link) == [0])
    entered, release = threading.Semaphore(0), threading.Event()
    real = getattr(file_io, step)

    def held(*args: object, **kwargs: object) -> object:
        entered.release()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(file_io, step, held)
    upload.send_all(link)
    await until(lambda: entered.acquire(blocking=False))  # finishing: at that step
    await node.async_file_cancel(upload.tid.hex())
    release.set()
    for _ in range(50):
        await asyncio.sleep(0.01)
    kinds = link.kinds()
    assert kinds[-1] is ControlKind.CANCEL, kinds
    assert ControlKind.FAIL not in kinds
    assert ControlKind.DONE not in kinds
    assert saved_files(tmp_path) == []
    assert list((tmp_path / "dl" / ".p2pchat-partial").iterdir()) == []
    stored = node.profile.files.get(upload.tid)
    assert stored is not None
    assert stored.state is TransferState.CANCELLED


async def test_a_failing_background_task_is_logged_when_it_fails(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> None:
        raise RuntimeError("a bug")

    caplog.set_level(logging.ERROR, logger="p2pchat.node.core")
    task = node.spawn(broken())
    await asyncio.wait([task])
    await asyncio.sleep(0)
    assert [r.exc_info[1] for r in caplog.records if r.exc_info] == [task.exception()]


async def test_a_done_whose_progress_cannot_be_stored_still_ends_the_send(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(random.Random(seed).randbytes(1000))
    _, link, tid = await offered(node, source)
    accept_from(node, link, tid, 0)
    await until(lambda: len(link.chunks) == 1)

    def disk_full(*args: object, **kwargs: object) -> bool:
        raise StoreError("the disk is full")

    monkeypatch.setattr(node.profile.files, "update_progress", disk_full)
    done = FileControl(ControlKind.DONE, tid, 1000, "")
    node.files.on_frame(cast(PeerLink, link), control_frame(done), ref_of(link.peer_key))
    held = node.profile.files.get(tid)
    assert held is not None
    assert held.state is TransferState.DONE


async def test_send_file_answers_before_the_file_is_hashed_then_offers_it(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(random.Random(seed).randbytes(2 * file_io.HASH_READ_BYTES + 3))
    key = add_contact(node.profile, "alice")
    events: list[object] = []
    monkeypatch.setattr(node, "emit", events.append)
    gate = HashGate(monkeypatch)
    call = asyncio.ensure_future(node.async_send_file("alice", str(source)))
    await gate.wait_entered()  # the whole file is being read...
    assert call.done()  # ...and the control call has answered already
    view = call.result()
    assert view.state == "hashing"
    assert [f.state for f in await node.async_files()] == ["hashing"]
    assert node.profile.pending_outbox(contact_conversation_id(key)) == []  # nothing offered
    gate.release.set()
    tid = bytes.fromhex(view.transfer_id)
    await until(lambda: hashed(node, tid))
    await until(lambda: not node.files._hashing)
    assert [f.state for f in await node.async_files()] == ["queued"]
    (entry,) = node.profile.pending_outbox(contact_conversation_id(key))
    assert entry.frame_type == FrameType.FILE_OFFER
    held = node.profile.files.get(tid)
    assert held is not None
    assert decode_offer(entry.payload or b"").file_hash == held.file_hash
    assert held.file_hash == hashlib.blake2b(source.read_bytes(), digest_size=32).digest()
    states = [getattr(e, "state", None) for e in events if isinstance(e, FileProgress)]
    assert states[0] == "hashing"
    assert states[-1] == "queued"


async def test_a_send_file_cancelled_or_stopped_while_hashing_is_never_offered(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(random.Random(seed).randbytes(1000))
    key = add_contact(node.profile, "alice")
    gate = HashGate(monkeypatch)
    cancelled = await node.async_send_file("alice", str(source))
    await gate.wait_entered()
    assert (await node.async_file_cancel(cancelled.transfer_id)).state == "cancelled"
    gate.release.set()
    await until(lambda: not node.files._hashing)
    assert node.profile.pending_outbox(contact_conversation_id(key)) == []
    # A node stopped while hashing: at the next start the send has failed, not been offered.
    gate.release.clear()
    stopped = await node.async_send_file("alice", str(source))
    await gate.wait_entered()
    node.files._hashing.clear()  # the run that read it is gone
    await node.files.async_start()
    gate.release.set()
    held = node.profile.files.get(bytes.fromhex(stopped.transfer_id))
    assert held is not None
    assert held.state is TransferState.FAILED
    link = open_link(node, key)
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert link.sent == []
    assert node.profile.pending_outbox(contact_conversation_id(key)) == []


async def test_accepting_and_cancelling_touch_the_disk_off_the_event_loop(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    loop_thread = threading.current_thread()
    on_loop: dict[str, set[bool]] = {}
    for name in ("partial_path", "truncate_partial", "free_bytes", "remove_partial"):
        real = getattr(file_io, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            on_loop.setdefault(_name, set()).add(threading.current_thread() is loop_thread)
            return _real(*args, **kwargs)

        monkeypatch.setattr(file_io, name, spy)
    key = add_contact(node.profile, "alice")
    upload = Upload(random.Random(seed).randbytes(2 * BLOCK_BYTES))
    link = open_link(node, key)
    upload.offer_to(node, link)
    await until(lambda: accepts(link) == [0])
    partial = tmp_path / "dl" / ".p2pchat-partial" / (upload.tid.hex() + ".part")
    assert partial.exists()
    await node.async_file_cancel(upload.tid.hex())
    await until(lambda: not partial.exists())
    assert on_loop == {name: {False} for name in on_loop}
    assert set(on_loop) == {"partial_path", "truncate_partial", "free_bytes", "remove_partial"}


def damaged(chunk: bytes) -> bytes:
    """The chunk with one ciphertext byte flipped: what a relay can do, not forge."""
    body = bytearray(chunk)
    body[-1] ^= 0x01
    return bytes(body)


async def test_a_chunk_damaged_on_the_relay_resumes_from_the_last_verified_block(
    node: Node, tmp_path: Path, seed: int
) -> None:
    key = add_contact(node.profile, "alice")
    upload = Upload(random.Random(seed).randbytes(3 * BLOCK_BYTES + 5))
    link = open_link(node, key)
    link.chunk_path = "relay"
    upload.offer_to(node, link)
    await until(lambda: accepts(link) == [0])
    assert link.file_chunk_handler is not None
    upload.send_blocks(link, range(1))
    await until(lambda: acked(link, upload.tid) == 1)
    block = upload.data[BLOCK_BYTES : 2 * BLOCK_BYTES]
    chunks = upload.out.chunks_of(1, block)
    link.file_chunk_handler(cast(PeerLink, link), chunks[0])
    link.file_chunk_handler(cast(PeerLink, link), damaged(chunks[1]))
    await until(lambda: accepts(link) == [0, 1])  # resume from the first block not verified
    assert ControlKind.FAIL not in link.kinds(), f"{link.controls()} seed {seed}"
    upload.out.on_accept(1)
    upload.send_all(link, first=1)  # the sender goes on from there: chunk 0 again too
    await until(lambda: ControlKind.DONE in link.kinds())
    assert (tmp_path / "dl" / "a.txt").read_bytes() == upload.data, f"seed {seed}"
    held = node.profile.files.get(upload.tid)
    assert held is not None
    assert held.state is TransferState.DONE


async def test_a_relay_that_keeps_damaging_chunks_fails_the_transfer_in_one_line(
    node: Node, seed: int
) -> None:
    key = add_contact(node.profile, "alice")
    upload = Upload(random.Random(seed).randbytes(BLOCK_BYTES + 5))
    link = open_link(node, key)
    link.chunk_path = "relay"
    upload.offer_to(node, link)
    await until(lambda: accepts(link) == [0])
    assert link.file_chunk_handler is not None
    first = upload.out.chunks_of(0, upload.data[:BLOCK_BYTES])[0]
    for _ in range(files_module.RELAY_DAMAGE_RESUMES):
        link.file_chunk_handler(cast(PeerLink, link), damaged(first))
    assert ControlKind.FAIL not in link.kinds()
    assert len(accepts(link)) == 1 + files_module.RELAY_DAMAGE_RESUMES
    link.file_chunk_handler(cast(PeerLink, link), damaged(first))
    await until(lambda: ControlKind.FAIL in link.kinds())
    fail = next(c for c in link.controls() if c.kind is ControlKind.FAIL)
    assert fail.reason == "the relay kept damaging the file (file-bad-ciphertext)"
    held = node.profile.files.get(upload.tid)
    assert held is not None
    assert held.state is TransferState.FAILED


async def test_a_damaged_chunk_on_the_data_channel_still_fails_the_transfer(
    node: Node, seed: int
) -> None:
    """Inside DTLS only the peer itself can have sent it: no resume."""
    key = add_contact(node.profile, "alice")
    upload = Upload(random.Random(seed).randbytes(BLOCK_BYTES + 5))
    link = open_link(node, key)
    upload.offer_to(node, link)
    await until(lambda: accepts(link) == [0])
    assert link.file_chunk_handler is not None
    first = upload.out.chunks_of(0, upload.data[:BLOCK_BYTES])[0]
    link.file_chunk_handler(cast(PeerLink, link), damaged(first))
    await until(lambda: ControlKind.FAIL in link.kinds())
    assert accepts(link) == [0]
