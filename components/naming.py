"""Names the clouds see. Some must be unique in an account and region (Alibaba key pairs,
CloudWatch dashboards), and every stack of the project lives in the same accounts, so
each such name carries the project and the stack: `aws2aliyun-vpc-prod-link-...`."""

from __future__ import annotations

import hashlib
from typing import TypeVar

import pulumi

from core.settings import NAMESPACE


def stack_scoped(*parts: str) -> str:
    """`<project>-<stack>[-part...]`: readable in a console, unique per stack."""
    return "-".join((NAMESPACE, pulumi.get_stack(), *parts))


def fingerprint(text: str, length: int = 10) -> str:
    """A short, stable digest of `text` (e.g. a public key), for names that must change
    whenever the content does."""
    return hashlib.sha256(text.strip().encode()).hexdigest()[:length]


def key_pair_name(component: str, public_key: str) -> str:
    """The Alibaba key pair's name: per stack, and new for every new public key. The provider
    never updates or reads back a key pair's public key (terraform-provider-alicloud
    resource_alicloud_ecs_key_pair.go: `public_key` is neither ForceNew nor updated), but its
    name is ForceNew: a new key gets a new key pair, created before the old one is deleted."""
    return stack_scoped(component, fingerprint(public_key))


def cidr_slug(cidr: object) -> str:
    """A prefix as part of a resource name (`10.10.0.0/16` -> `10-10-0-0-16`): a resource per
    prefix is named by its prefix, so adding or reordering prefixes never renames another."""
    return str(cidr).replace(".", "-").replace("/", "-")


T = TypeVar("T")


def given(value: T | None) -> T:
    """An optional setting the caller has just checked is set."""
    if value is None:  # pragma: no cover - a bug: callers test first
        raise ValueError("setting is unset")
    return value
