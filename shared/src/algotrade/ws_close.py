"""WebSocket close codes the platform sends, shared by the gateway's relay and the notification
service so that a client sees one meaning per code whichever of them closed the socket."""

from __future__ import annotations

POLICY_VIOLATION = 1008  # no valid credential, or a limit of the user's
TRY_AGAIN_LATER = 1013  # the server is full or a dependency is away
IDLE = 4000  # nothing subscribed and nothing said for too long
TOO_SLOW = 4008  # the client fell too far behind; reconnect with resume_from
