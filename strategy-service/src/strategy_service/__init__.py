"""AlgoTrade strategy service: strategies, versions, templates, graph validation and compilation."""
