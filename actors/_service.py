"""Assembles the service's supervision tree from the settings."""

from __future__ import annotations

import random

import attrs

from config import Settings
from supervision import Backoff, ChildSpec, SupervisorSpec, chaos_monkey

from .status_log import status_logger


@attrs.frozen
class ServiceOptions:
    """Command-line choices that shape the tree (beyond the settings)."""

    #: Chaos mode: kill a random actor this many times a minute (None: off).
    chaos_per_minute: float | None = None
    #: Seed for chaos and jitter, for reproducible runs (None: random).
    seed: int | None = None


@attrs.define
class Service:
    """The root of the tree and what its actors share."""

    spec: SupervisorSpec
    children: list[ChildSpec]
    rng: random.Random


def build_service(settings: Settings, options: ServiceOptions) -> Service:
    """The root supervisor's spec and children, in start order.

    Start order puts consumers before producers, so shutdown (reverse order) stops the
    producers first and lets consumers drain their inboxes.
    """
    rng = random.Random(options.seed)
    children: list[ChildSpec] = []
    if settings.status_log_interval > 0:
        children.append(ChildSpec(id="status_log", run=status_logger(settings.status_log_interval), shutdown=0,
                                  backoff=Backoff(min=1, max=30)))
    if options.chaos_per_minute:
        children.append(ChildSpec(
            id="chaos", run=chaos_monkey(options.chaos_per_minute, rng=random.Random(rng.random())), shutdown=0))
    # Root: tolerate a burst of 3 subtree restarts a minute; anything worse is a real outage.
    return Service(spec=SupervisorSpec(intensity=3, period=60), children=children, rng=rng)
