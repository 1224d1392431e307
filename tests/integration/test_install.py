"""scripts/install.sh, as a newcomer runs it: no npm needed to run p2pchat.

The real script runs in a copy of the repository (the files a fresh clone has) with a
PATH that has no node or npm. The venv is made beforehand and stamped as installed,
so pip is not run (that part is pip's, and slow): what is tested is the script's own
decisions. The committed page in signaling/static/ must be taken as it is when
browser/src is what it was built from, and never make the run command fail.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

NODE_TOOLS = {"node", "nodejs", "npm", "npx", "corepack"}
TIMEOUT = 120


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """The repository's files as a fresh clone has them, with a ready, stamped .venv."""
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the repository")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, check=True, timeout=TIMEOUT,
    ).stdout  # fmt: skip
    copy = tmp_path / "p2pchat"
    for name in filter(None, listed.decode().split("\0")):
        source = REPO_ROOT / name
        if source.is_file():  # a file deleted but not yet committed is listed too
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    venv = copy / ".venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=TIMEOUT
    )
    # `import p2pchat` works in it (the script checks that), from the copy.
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    site.mkdir(parents=True, exist_ok=True)
    (site / "p2pchat-copy.pth").write_text(f"{copy}\n")
    pyproject = hashlib.sha256((copy / "pyproject.toml").read_bytes()).hexdigest()
    (venv / ".p2pchat-install-stamp").write_text(f"{pyproject} run\n")
    return copy


@pytest.fixture
def path_without_node(tmp_path: Path) -> str:
    """A PATH with every command of this one but node and npm."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or not Path(directory).is_dir():
            continue
        for entry in Path(directory).iterdir():
            target = bin_dir / entry.name
            if entry.name not in NODE_TOOLS and not target.exists():
                target.symlink_to(entry)
    return str(bin_dir)


def install(clone: Path, path: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        ["bash", "scripts/install.sh", *args],
        cwd=clone, env=env, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip


def static_files(clone: Path) -> dict[str, bytes]:
    static = clone / "signaling" / "static"
    return {p.name: p.read_bytes() for p in sorted(static.iterdir())}


def test_the_run_command_needs_no_npm_when_the_page_is_built(
    clone: Path, path_without_node: str
) -> None:
    before = static_files(clone)
    result = install(clone, path_without_node)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "npm" not in output, output
    assert "warning" not in output, output  # browser/static-inputs.sha256 is current
    assert static_files(clone) == before
    # It says how to start p2pchat, as the README's Use section does.
    assert ".venv/bin/p2pchat" in output
    assert f'export PATH="{clone}/.venv/bin:$PATH"' in output


def test_a_changed_page_source_without_npm_is_a_warning_not_a_failure(
    clone: Path, path_without_node: str
) -> None:
    before = static_files(clone)
    with (clone / "browser" / "src" / "style.css").open("a") as css:
        css.write("/* edited */\n")
    result = install(clone, path_without_node)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "--with-browser-build" in output, output
    assert static_files(clone) == before


def test_a_rebuild_asked_for_without_npm_says_what_is_missing(
    clone: Path, path_without_node: str
) -> None:
    result = install(clone, path_without_node, "--with-browser-build")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert "npm not found" in errors[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_the_readmes_use_commands_work_as_written() -> None:
    """Each block of the README's Use section puts .venv/bin on PATH before it calls
    `p2pchat` (the run command does not), and each command line parses."""
    from p2pchat.cli import build_parser

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    use = readme.split("\n## Use\n", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in use.split("```sh\n")[1:]]
    assert blocks, "no ```sh blocks in the README's Use section"
    for block in blocks:
        on_path = False
        for line in block.splitlines():
            command = line.split("#", 1)[0].strip()
            if command == 'export PATH="$PWD/.venv/bin:$PATH"':
                on_path = True
            elif command.startswith("p2pchat"):
                assert on_path, f"`{command}` runs before .venv/bin is on PATH:\n{block}"
                build_parser().parse_args(shlex.split(command)[1:])  # SystemExit if not
