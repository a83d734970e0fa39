"""Real storage faults for tests: a file or folder that refuses writes, a volume that is full.

These tests run as root, whom permission bits do not stop: as root a path is made
immutable (`chattr +i`, which refuses root's writes too), as another user it loses
its write bits. A full volume is a small tmpfs mounted for the test (root only).
Where the machine allows neither, the test is skipped and says why.
"""
import errno
import os
import shutil
import stat
import subprocess

import pytest


class Unwritable:
    """A file or folder that refuses writes from entering the block until end() or the block's end."""

    def __init__(self, path: str):
        """The path must exist."""
        self.path = path
        self.active = False
        self._mode = None

    def __enter__(self) -> "Unwritable":
        if os.geteuid() != 0:
            self._mode = stat.S_IMODE(os.stat(self.path).st_mode)
            os.chmod(self.path, self._mode & ~0o222)
        elif shutil.which("chattr") is None or subprocess.run(["chattr", "+i", self.path],
                                                               capture_output=True).returncode:
            pytest.skip(f"cannot make {self.path} immutable here (chattr +i), and root ignores permission bits")
        self.active = True
        return self

    def end(self) -> None:
        """The fault is over (idempotent)."""
        if not self.active:
            return
        if self._mode is not None:
            os.chmod(self.path, self._mode)
        else:
            subprocess.run(["chattr", "-i", self.path], check=True)
        self.active = False

    def __exit__(self, *_exc) -> None:
        self.end()


class SmallVolume:
    """A small tmpfs mounted on an empty folder for the block; fill() takes every free byte, free() gives them back."""

    def __init__(self, path: str, size: str = "1m"):
        """path: an empty folder (made if missing); size as mount takes it."""
        self.path, self.size = path, size
        self.filler = os.path.join(path, "filler")

    def __enter__(self) -> "SmallVolume":
        os.makedirs(self.path, exist_ok=True)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs", self.path],
                                 capture_output=True)
        if mounted.returncode:
            pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
        return self

    def fill(self) -> None:
        """Write until the volume refuses (ENOSPC)."""
        with open(self.filler, "ab", buffering=0) as file:
            try:
                while True:
                    file.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc

    def free(self) -> None:
        """Give the space back."""
        os.remove(self.filler)

    def __exit__(self, *_exc) -> None:
        subprocess.run(["umount", "-l", self.path], check=True)
