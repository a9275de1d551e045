"""Supervision trees for trio actors: OTP semantics with Akka-style backoff.

An *actor* is ``async def run(ctx, *, task_status)``; a :class:`ChildSpec` says how to run,
restart and stop it; a :class:`Supervisor` (or :func:`run_supervisor` at the root) starts
children in order, restarts them by strategy with backoff, escalates past its intensity
with :class:`SupervisorGaveUp`, and stops them in reverse order.  Inboxes belong to the
supervisor so nothing queued is lost when an actor restarts.
"""

from ._chaos import chaos_monkey
from ._context import ActorContext
from ._dynamic import DynamicSupervisor
from ._errors import ActorKilled, SupervisorGaveUp, SupervisorNotRunning, TooManyChildren
from ._inbox import Inbox, InboxReceiver, InboxStatistics, deliver
from ._registry import ActorInfo, ActorState, Registry
from ._spec import Backoff, ChildSpec, Restart, Strategy, SupervisorSpec
from ._supervisor import Supervisor, run_supervisor, supervisor_child

__all__ = [
    "ActorContext", "ActorInfo", "ActorKilled", "ActorState", "Backoff", "ChildSpec",
    "DynamicSupervisor", "Inbox", "InboxReceiver", "InboxStatistics", "Registry", "Restart",
    "Strategy", "Supervisor", "SupervisorGaveUp", "SupervisorNotRunning", "SupervisorSpec",
    "TooManyChildren", "chaos_monkey", "deliver", "run_supervisor", "supervisor_child",
]
