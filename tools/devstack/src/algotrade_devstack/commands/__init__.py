"""The user's commands of ``algotrade``: login, strategies, data, backtests, sessions, agents.

Each group talks to the gateway through the SDK (`algotrade_client.Client`) and is imported
only when its command runs, so ``algotrade --help`` stays quick.
"""
