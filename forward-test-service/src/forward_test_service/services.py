"""The forward-test service's domain objects, built once in the lifespan and handed to routes."""

from __future__ import annotations

from dataclasses import dataclass

from forward_test_service.access import AccessWatch
from forward_test_service.agent_orders import AgentOrders
from forward_test_service.agents.desk import AgentDesk
from forward_test_service.broker import Broker
from forward_test_service.checkpoints import CheckpointStore
from forward_test_service.config import Settings
from forward_test_service.store import SessionStore
from forward_test_service.submission import Submission


@dataclass(frozen=True)
class SessionServices:
    """What the routes use: the session table, the checkpoints in Redis, the broker that
    restores an account to compute its live metrics, and the submission path (strategy and
    warm-up bars fetched, plan checked, account warmed up), the execution agents, and the
    check that shared series are still shared."""

    settings: Settings
    sessions: SessionStore
    checkpoints: CheckpointStore
    broker: Broker
    submission: Submission
    agents: AgentDesk
    access: AccessWatch
    orders: AgentOrders
