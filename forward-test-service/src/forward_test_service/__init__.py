"""AlgoTrade forward-test service: forward-test sessions, paper broker and execution agents."""
