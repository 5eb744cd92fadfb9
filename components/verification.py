"""SSH access to the gateway and the optional post-deploy check that the link is up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_tls as tls

from core.paths import VERIFY_PATH
from core.settings import Settings

# Waits for cloud-init (package install, strongSwan start), then for both tunnels.
VERIFY_WAIT_S = 300
VERIFY_COMMAND = f"cloud-init status --wait >/dev/null; {VERIFY_PATH} --wait {VERIFY_WAIT_S}"
SSH_USER = "root"


@dataclass
class SshAccess:
    public_key: pulumi.Input[str] | None
    private_key: pulumi.Output[str] | None
    generated_private_key: pulumi.Output[str] | None


def ssh_access(name: str, s: Settings, parent: pulumi.Resource) -> SshAccess:
    """The key pair for the ECS: the configured one, a generated one when verify needs a
    key and none was given (private key kept as a secret output), or none at all."""
    if s.ssh_public_key is not None:
        private: pulumi.Output[str] | None = None
        if s.ssh_private_key is not None:  # a string, or an Output of the caller's secret store
            private = pulumi.Output.secret(pulumi.Output.from_input(s.ssh_private_key).apply(str))
        return SshAccess(public_key=s.ssh_public_key, private_key=private, generated_private_key=None)
    if not s.verify:
        return SshAccess(public_key=None, private_key=None, generated_private_key=None)
    # Alibaba key pairs import RSA keys.
    key = tls.PrivateKey(f"{name}-ssh-key", algorithm="RSA", rsa_bits=4096, opts=pulumi.ResourceOptions(parent=parent))
    generated: pulumi.Output[str] = pulumi.Output.secret(key.private_key_openssh)
    return SshAccess(public_key=key.public_key_openssh, private_key=generated, generated_private_key=generated)


def verify_link(
    name: str,
    host: pulumi.Output[str],
    private_key: pulumi.Output[str] | None,
    triggers: list[pulumi.Output[str]],
    depends_on: Sequence[pulumi.Resource],
    parent: pulumi.Resource,
) -> command.remote.Command:
    """Run the gateway's verify script over SSH: `pulumi up` fails when the link is down.

    The private key travels in the connection (a secret input), never in the command text;
    the output is kept secret as it names addresses and SA state.
    """
    return command.remote.Command(
        f"{name}-verify",
        connection=command.remote.ConnectionArgs(
            host=host, user=SSH_USER, private_key=private_key, dial_error_limit=30
        ),
        create=VERIFY_COMMAND,
        triggers=triggers,
        # pulumi-command streams stdout/stderr to the engine's log (the CI log) unless told
        # not to, secret outputs or not: keep them only as the secret outputs.
        logging=command.remote.Logging.NONE,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(depends_on),
            additional_secret_outputs=["stdout", "stderr"],
        ),
    )
