"""The end-to-end lab: the program's exact user-data in a Debian VM against AWS-like peers.

`python -m lab run` plans the program offline, boots a Debian 12 VM under QEMU (TCG)
whose cloud-init gets the ECS's user-data byte for byte, builds an Alibaba router, an
internet and two AWS-like strongSwan endpoints around it in network namespaces, and
runs named checks. See lab/README.md.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent  # the repository the lab runs the program of
