//+------------------------------------------------------------------+
//| AlgoTradeExample.mq5                                              |
//| The smallest expert advisor that runs an AlgoTrade Beta2 agent:   |
//| attach it to one chart; it trades what the platform commands and  |
//| pushes that chart's bars. See clients/README.md.                  |
//+------------------------------------------------------------------+
#property copyright "AlgoTrade Beta2"
#property version   "1.00"

#include <AlgoTradeAgent.mqh>

input string InpUrl              = "https://algotrade.example.com"; // Gateway URL (allow it for WebRequest)
input string InpAgentId          = "";   // Agent id (from the registration answer)
input string InpApiKey           = "";   // Agent API key, atk_... (shown once at registration)
input int    InpHeartbeatSeconds = 5;    // Heartbeat, s (as registered: heartbeat_seconds)
input int    InpPollSeconds      = 1;    // Command poll, s
input int    InpPollWaitSeconds  = 0;    // Poll wait, s (0-3: WebRequest blocks the expert)
input ulong  InpMagic            = 20240101; // Magic number of the agent's orders
input string InpBarSymbol        = "";   // Symbol for pushed bars (empty: the chart's)

CAlgoTradeAgent agent;

int OnInit()
  {
   if(!agent.Init(InpUrl, InpAgentId, InpApiKey, InpHeartbeatSeconds, InpPollSeconds,
                  InpPollWaitSeconds, InpMagic, InpBarSymbol))
      return INIT_PARAMETERS_INCORRECT;
   EventSetTimer(1);
   return INIT_SUCCEEDED;
  }

void OnDeinit(const int reason)
  {
   EventKillTimer();
   agent.Deinit();
  }

void OnTimer()
  {
   agent.OnTimer();
  }

// The agent works on the timer; an expert of your own would trade here.
void OnTick()
  {
  }
//+------------------------------------------------------------------+
