"""One call as a flow: send it with the client's credentials; on a 401, refresh the access
token once (if there is a refresh token) and send it again; then raise the problem of a non-2xx
answer, or parse the answer.

Refreshing is guarded: the first flow to see a 401 spends the refresh token while the others
wait for it and then retry with the new token, since a refresh token presented twice revokes
the whole session at the gateway.
"""

from __future__ import annotations

import time
from typing import TypeVar

import httpx

from algotrade_client.calls import JSON, Call, Flow, Sleep, json_object
from algotrade_client.credentials import Credentials
from algotrade_client.errors import api_error

T = TypeVar("T")

REFRESH_PATH = "/api/auth/refresh"
REFRESH_WAIT_SECONDS = 30.0
"""How long a flow waits for another one's refresh before trying its own."""
REFRESH_POLL_SECONDS = 0.02


def exchange(call: Call[T], credentials: Credentials) -> Flow[T]:
    """Send ``call``; its parsed answer, or the `ApiError` of its problem."""
    sent_with = credentials.generation
    headers = credentials.headers() if call.authenticated else {}
    response: httpx.Response = yield call.outgoing(headers)
    if response.status_code == 401 and call.authenticated and credentials.refresh_token:
        yield from renew(credentials, sent_with)
        response = yield call.outgoing(credentials.headers())
    if response.is_error:
        raise api_error(response)
    return call.parse(response)


def refresh_call(refresh_token: str) -> Call[JSON]:
    return Call(
        "POST",
        REFRESH_PATH,
        json_object,
        json={"refresh_token": refresh_token},
        authenticated=False,
    )


def renew(credentials: Credentials, seen: int) -> Flow[None]:
    """Make the token newer than generation ``seen``: refresh it, or wait for the flow that
    is refreshing it."""
    deadline = time.monotonic() + REFRESH_WAIT_SECONDS
    while credentials.generation == seen:
        if credentials.try_begin_refresh():
            try:
                if credentials.generation != seen or not credentials.refresh_token:
                    return  # refreshed (or logged out) while we asked
                pair = yield from exchange(refresh_call(credentials.refresh_token), credentials)
                credentials.store(pair)
            finally:
                credentials.end_refresh()
            return
        if time.monotonic() > deadline:
            return  # the other refresh hangs: retry with what we have
        yield Sleep(REFRESH_POLL_SECONDS)


def refresh(credentials: Credentials) -> Flow[JSON]:
    """Spend the refresh token for a new pair now (`Auth.refresh`), under the same guard."""
    if not credentials.refresh_token:
        raise ValueError("this client holds no refresh token (log in first)")
    while not credentials.try_begin_refresh():
        yield Sleep(REFRESH_POLL_SECONDS)
    try:
        token = credentials.refresh_token
        if not token:
            raise ValueError("this client holds no refresh token (log in first)")
        pair = yield from exchange(refresh_call(token), credentials)
        credentials.store(pair)
        return pair
    finally:
        credentials.end_refresh()
