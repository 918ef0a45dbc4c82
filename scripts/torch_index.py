#!/usr/bin/env python3
"""Where `make setup` (and `make lock`) finds the locked torch.

PyPI serves torch's default build only (CUDA on Linux); the CPU build, ``torch==X+cpu``,
lives on PyTorch's own index (https://download.pytorch.org/whl/cpu), and the CUDA builds
other than PyPI's on ``.../whl/cuXYZ``. So a lock that pins ``2.13.0+cpu`` cannot be
installed from PyPI alone. This script asks pip which torch versions the CONFIGURED
sources offer (``pip index versions torch``: index, extra indexes and find-links, as
pip is set up on this machine) and prints the one pip option to add:

* nothing, when the locked version is offered (this project's machines: a find-links
  folder holds the CPU wheel; or a user who configured PyTorch's index already), so the
  install is exactly as fast as before: one extra index adds one more request per
  package, which is why it is never added blindly;
* ``--extra-index-url https://download.pytorch.org/whl/<variant>`` otherwise, and it says
  so on stderr. The lock's hashes still decide which file is installed.

Usage: ``torch_index.py --lock requirements.lock --pip .venv/bin/pip`` (stdlib only: it
runs before the project is installed). ``decide`` is the tested decision; no network in
the tests. Two more modes serve the Makefile: ``--without-torch`` prints the lock without
torch and its CUDA wheels (``make setup TORCH=own``: the rest of the lock around a torch
that is already installed), ``--pins-without-torch`` its other pins as constraints
(``make lock``: the CUDA lock keeps the CPU lock's versions).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

PYTORCH_INDEX = "https://download.pytorch.org/whl/{variant}"
# torch and the wheels that come with a CUDA build of it (PyPI's torch 2.13.0: cuda-toolkit
# 13, cuda-bindings, nvidia-*-cu13, triton); what the two locks may differ in
TORCH_FAMILY = re.compile(r"torch|triton|nvidia-.+|cuda-.+")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", flags=re.M)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def is_torch_family(name: str) -> bool:
    """Whether a package is torch or one of the CUDA wheels a torch build pulls."""
    return TORCH_FAMILY.fullmatch(_normalise(name)) is not None


def blocks(lock_text: str) -> list[str]:
    """A pip-compile lock cut into its parts: the header, then one block per package (its
    pin line, hash lines and ``# via`` comments)."""
    return re.split(r"\n(?=[A-Za-z0-9])", lock_text)


def without_torch(lock_text: str) -> str:
    """The lock without torch and its CUDA wheels, every other block as it was."""
    kept = [b for b in blocks(lock_text)
            if not (_PIN.match(b) and is_torch_family(_PIN.match(b).group(1)))]
    return "\n".join(kept).rstrip("\n") + "\n"


def pins_without_torch(lock_text: str) -> str:
    """``name==version`` of every pin but torch and its CUDA wheels (a constraints file)."""
    return "".join(f"{name}=={version}\n" for name, version in _PIN.findall(lock_text)
                   if not is_torch_family(name))


def locked_torch(lock_text: str) -> str | None:
    """The torch version a lock pins (``2.13.0+cpu``), or None."""
    match = re.search(r"^torch==([^\s;\\]+)", lock_text, flags=re.M)
    return match.group(1) if match else None


def variant(version: str) -> str | None:
    """The PyTorch index variant of a version: ``cpu`` for ``2.13.0+cpu``, ``cu128`` for
    ``2.13.0+cu128``; None for a plain version (PyPI's own build)."""
    local = version.partition("+")[2]
    return local if re.fullmatch(r"cpu|cu\d+|rocm[\d.]+|xpu", local) else None


def offered_versions(pip_output: str, returncode: int) -> set[str] | None:
    """The torch versions in the output of ``pip index versions torch``: an empty set when
    pip found no torch at all, None when the output says nothing either way (pip failed
    for another reason, e.g. an unreachable index)."""
    if "No matching distribution found" in pip_output:
        return set()
    match = re.search(r"^Available versions:\s*(.+)$", pip_output, flags=re.M)
    if returncode != 0 or not match:
        return None
    return {v.strip() for v in match.group(1).split(",") if v.strip()}


def decide(locked: str | None, offered: set[str] | None) -> tuple[str | None, str]:
    """The extra index to add for ``locked`` (None: none), and why, in words."""
    if locked is None:
        return None, "the lock pins no torch"
    index_variant = variant(locked)
    if index_variant is None:
        return None, f"torch {locked} is PyPI's own build"
    if offered is not None and locked in offered:
        return None, f"torch {locked} is on the configured package index"
    url = PYTORCH_INDEX.format(variant=index_variant)
    if offered is None:
        why = "pip could not list the torch versions of the configured package index"
    else:
        why = f"torch {locked} is not on the configured package index"
    return url, f"{why}; installing it from PyTorch's wheel index {url}"


def _ask_pip(pip: str, options: list[str]) -> set[str] | None:
    try:
        done = subprocess.run([pip, "index", "versions", "torch", *options], text=True,
                              capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return offered_versions(done.stdout + done.stderr, done.returncode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", required=True, type=Path)
    parser.add_argument("--pip", default="pip", help="the pip that will install the lock")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--without-torch", action="store_true",
                      help="print the lock without torch and its CUDA wheels")
    mode.add_argument("--pins-without-torch", action="store_true",
                      help="print the lock's other pins, name==version, one a line")
    args = parser.parse_args(argv)
    text = args.lock.read_text()
    if args.without_torch:
        sys.stdout.write(without_torch(text))
        return 0
    if args.pins_without_torch:
        sys.stdout.write(pins_without_torch(text))
        return 0
    locked = locked_torch(text)
    offered: set[str] | None = None
    if locked is not None and variant(locked) is not None:
        # find-links folders first (no network: this project's machines end here), then
        # every configured index
        for extra in (["--no-index"], []):
            offered = _ask_pip(args.pip, extra)
            if offered is not None and locked in offered:
                break
    url, why = decide(locked, offered)
    if url is not None:
        print(f"make: {why}", file=sys.stderr)
        print(f"--extra-index-url {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
