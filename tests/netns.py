"""A throwaway machine for tests: a Linux network namespace joined to this one by a veth pair.

A process started in it (`Machine.start`) reaches the test servers at the
veth's host side (`host_address`, on a private /30 that exists only on this
machine, so the servers stay private), as a process on another machine
reaches a server over the network.

`pull_plug` takes the machine's network away as a pulled cable or a power
cut does: the machine's side of the veth goes down, so nothing it sends
leaves it any more (no FIN, no RST when its processes die), and what the
servers send to it is dropped by the veth driver with no error to them: they
learn it is gone only by their own timeouts. (A netem `loss 100%` qdisc
would say the same, but the kernels this runs on may lack sch_netem; a
zero-length queue would tell the sender "congested", not silence.)
`restore` plugs the cable back in, its processes' connections as they were.

Needs root (CAP_NET_ADMIN) and iproute2's `ip`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
import shutil
import subprocess
import uuid
from typing import Sequence

#: The machines' /30s are taken from here; one not in use on this host is chosen for each.
NETWORKS = ipaddress.ip_network("10.231.0.0/16")


class MachineError(RuntimeError):
    """A network namespace could not be made or changed."""


class Machine:
    """A network namespace with one veth to this host: `host_address` here, `address` in it."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.name = f"secretary-{tag}"
        self.host_side, self.machine_side = f"sv{tag}h", f"sv{tag}m"  # interface names are at most 15 characters
        network = _free_network()
        self.host_interface = f"{network[1]}/{network.prefixlen}"
        self.host_address, self.address = str(network[1]), str(network[2])
        self.machine_interface = f"{self.address}/{network.prefixlen}"
        self._processes: list[subprocess.Popen[bytes]] = []
        self._made = False

    def create(self) -> None:
        """Make the namespace and the veth pair, addressed and up (a failure leaves what was made for `remove`)."""
        _ip("netns", "add", self.name)
        self._made = True
        _ip("link", "add", self.host_side, "type", "veth", "peer", "name", self.machine_side)
        _ip("link", "set", self.machine_side, "netns", self.name)
        _ip("addr", "add", self.host_interface, "dev", self.host_side)
        _ip("link", "set", self.host_side, "up")
        _ip("-n", self.name, "addr", "add", self.machine_interface, "dev", self.machine_side)
        _ip("-n", self.name, "link", "set", self.machine_side, "up")
        _ip("-n", self.name, "link", "set", "lo", "up")

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` as run inside the machine (`ip netns exec` execs it, so the process's pid is the command's)."""
        return [_program(), "netns", "exec", self.name, *argv]

    def start(self, argv: Sequence[str], **options) -> subprocess.Popen[bytes]:
        """A process inside the machine (options as for Popen); killed by `remove` if still running."""
        process = subprocess.Popen(self.command(argv), **options)
        self._processes.append(process)
        return process

    def pull_plug(self) -> None:
        """From now on nothing gets in or out, and no one is told."""
        _ip("-n", self.name, "link", "set", self.machine_side, "down")

    def restore(self) -> None:
        """The cable back in: the machine's address and route come back with its link."""
        _ip("-n", self.name, "link", "set", self.machine_side, "up")

    def remove(self) -> None:
        """Kill what was started inside, then take the namespace and the veth pair away (always safe to call)."""
        for process in self._processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        self._processes.clear()
        if not self._made:
            return
        with contextlib.suppress(MachineError):
            _ip("link", "del", self.host_side)  # takes its peer with it
        _ip("netns", "del", self.name)
        self._made = False


def _free_network() -> ipaddress.IPv4Network:
    """A /30 of NETWORKS that no interface of this host is on (another test run may hold some)."""
    used = [ipaddress.ip_interface(word).network for word in _ip("-o", "-4", "addr", "show").split() if "/" in word]
    candidates = list(NETWORKS.subnets(new_prefix=30))
    random.shuffle(candidates)
    for network in candidates:
        if not any(network.overlaps(other) for other in used):
            return network
    raise MachineError(f"no free /30 left in {NETWORKS}")


def _program() -> str:
    found = shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin")
    if found is None:
        raise MachineError("`ip` not found: install the Debian package iproute2")
    return found


def _ip(*arguments: str) -> str:
    done = subprocess.run([_program(), *arguments], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise MachineError(f"`ip {' '.join(arguments)}` failed ({done.returncode}): {done.stderr.strip()}"
                           " (a test machine needs root with CAP_NET_ADMIN)")
    return done.stdout
