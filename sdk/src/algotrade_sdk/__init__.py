"""The AlgoTrade Beta2 Python SDK. For now it holds the reference execution agent:

- `account`: `SimulatedAccount`, the trading account a real terminal would hold, kept in a JSON
  file so that a restarted agent finds the same positions (and the fills it recorded);
- `protocol`: the JSON bodies of the agent protocol and the bar push, as typed dictionaries;
- `client`: `AgentClient`, the agent's HTTP calls, and the errors that tell "server away"
  from "request refused";
- `backoff`: `Backoff`, the capped exponential reconnect delay with jitter;
- `bars`: `BarQueue`, the bars waiting to be pushed, and `LastCloses`, prices from them;
- `execution`: `CommandExecutor`, a leased command carried out on the account, and its ack;
- `agent`: `ReferenceAgent`, which runs the protocol (heartbeats, command long-poll and acks,
  trade sync, bar push, reconnects), and its command line (``python -m algotrade_sdk.agent``).

It runs on a trader's machine, so it depends on httpx and the standard library only and never
imports the platform's packages (``algotrade``, the services).
"""
