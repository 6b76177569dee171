"""The backtesting service's domain objects, built once in the lifespan and handed to routes."""

from __future__ import annotations

from dataclasses import dataclass

from backtesting_service.config import Settings
from backtesting_service.jobs import JobStore
from backtesting_service.results import ResultStore
from backtesting_service.submission import Submission


@dataclass(frozen=True)
class BacktestServices:
    """What the routes use: the job table, the result store in S3 and the submission path
    (strategy and bars fetched, plan compiled, job accepted)."""

    settings: Settings
    jobs: JobStore
    results: ResultStore
    submission: Submission
