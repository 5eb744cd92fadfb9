"""The world VM's spare vSwitch ports, where gateway VMs of their own plug in their NIC.

Each port is a pair of UDP sockets on the loopback address, connected to each other and held
by the lab for the whole run: one end is given to the world VM's QEMU (a `dgram` netdev on its
vSwitch hub), the other to whichever gateway VM is on the port now (the first, its power-on
again, its replacement). Like a switch port, it drops what a machine that is off or still
booting does not take: a datagram socket never pushes back.

A unix stream socket did push back (docs/lab-findings.md #36): QEMU 7.2's stream netdev writes
to it blocking, from the world VM's main loop, and a gateway VM whose NIC has no driver yet
reads nothing, so once the socket's buffer was full (the hub floods every frame to every port)
the whole world VM stopped until the new gateway's kernel brought its NIC up: the 9-20 s
stalls of the probe senders at a gateway's power-on (#33, #34).

Holding the sockets (rather than giving QEMU addresses to bind) means no port can be taken by
anything else between a gateway's power-off and its power-on, and no socket file is left.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class VSwitchPort:
    number: int
    world: socket.socket  # the world VM's end (its hub port `vsw{number}`)
    gateway: socket.socket  # the gateway VM's end (its NIC `eth0`)

    @classmethod
    def open(cls, number: int) -> VSwitchPort:
        world = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        gateway = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (world, gateway):
            s.bind((LOOPBACK, 0))  # a free port, the kernel's choice
        world.connect(gateway.getsockname())
        gateway.connect(world.getsockname())
        # the sockets are passed to QEMU by number: they must survive its exec
        for s in (world, gateway):
            s.set_inheritable(True)
        return cls(number, world, gateway)

    def close(self) -> None:
        self.world.close()
        self.gateway.close()


# A run's ports, opened when the world VM's command line is made and kept until the process
# ends (one lab run per process): the run directory and the port's number name one.
_PORTS: dict[tuple[Path, int], VSwitchPort] = {}


def port(run_dir: Path, number: int) -> VSwitchPort:
    """The run's vSwitch port `number` (1-based), opened on first use."""
    key = (run_dir.resolve(), number)
    if key not in _PORTS:
        _PORTS[key] = VSwitchPort.open(number)
    return _PORTS[key]


def opened(run_dir: Path, number: int) -> bool:
    """Whether the world VM of this run was given port `number` (a check needing a gateway VM
    of its own asks before it starts one)."""
    return (run_dir.resolve(), number) in _PORTS


def close_all() -> None:
    for p in _PORTS.values():
        p.close()
    _PORTS.clear()
