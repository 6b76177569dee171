//+------------------------------------------------------------------+
//| AlgoTradeAgent.mqh                                                |
//| An AlgoTrade Beta2 execution agent inside a MetaTrader 5 expert   |
//| advisor: heartbeats, commands (poll, execute, ack), trade sync    |
//| and bar push, over WebRequest to the platform's gateway.          |
//|                                                                    |
//| Protocol: docs/agents.md. Install and configure: clients/README.md.|
//+------------------------------------------------------------------+
#include <Trade\Trade.mqh>

// @protocol-begin ---------------------------------------------------------------------------
// Every path, JSON field and enum value this client uses, checked against the services'
// OpenAPI by tests/test_agent_clients.py. Code below names JSON keys only through these macros.

// Endpoints, "<METHOD> <path>" for StringFormat: the agent id, then the command id.
#define AT_EP_HEARTBEAT "POST /api/agents/%s/heartbeat"
#define AT_EP_COMMANDS  "GET /api/agents/%s/commands?wait=%d&limit=%d"
#define AT_EP_ACK       "POST /api/agents/%s/commands/%s/ack"
#define AT_EP_SYNC      "POST /api/agents/%s/trades/sync"
#define AT_EP_BARS      "POST /api/market/bars"

// @fields POST /api/agents/{id}/heartbeat request
#define AT_HB_BALANCE            "balance"
#define AT_HB_EQUITY             "equity"
#define AT_HB_MARGIN             "margin"
#define AT_HB_FREE_MARGIN        "free_margin"
#define AT_HB_OPEN_POSITIONS     "open_positions"
#define AT_HB_TERMINAL_CONNECTED "terminal_connected"
#define AT_HB_TRADE_ALLOWED      "trade_allowed"
#define AT_HB_CLIENT_TIME_MS     "client_time_ms"
#define AT_HB_RTT_MS             "rtt_ms"
// @fields POST /api/agents/{id}/heartbeat response
#define AT_HBA_PENDING_COMMANDS  "pending_commands"
#define AT_HBA_STATE             "state"

// @fields GET /api/agents/{id}/commands response
#define AT_LEASED_DATA           "data"
// @fields GET /api/agents/{id}/commands response data[]
#define AT_CMD_ID                "id"
#define AT_CMD_KIND              "kind"
#define AT_CMD_IDEMPOTENCY_KEY   "idempotency_key"
#define AT_CMD_SYMBOL            "symbol"
#define AT_CMD_SIDE              "side"
#define AT_CMD_VOLUME            "volume"
#define AT_CMD_TICKET            "ticket"
#define AT_CMD_SL                "sl"
#define AT_CMD_TP                "tp"
#define AT_CMD_MESSAGE           "message"
// @values GET /api/agents/{id}/commands response data[] kind
#define AT_KIND_CLOSE_ALL        "close_all"
#define AT_KIND_CLOSE            "close"
#define AT_KIND_MODIFY           "modify"
#define AT_KIND_OPEN             "open"
#define AT_KIND_INFO             "info"
// @values GET /api/agents/{id}/commands response data[] side | POST /api/agents/{id}/trades/sync request positions[] side | POST /api/agents/{id}/trades/sync request closed[] side
#define AT_SIDE_BUY              "buy"
#define AT_SIDE_SELL             "sell"

// @fields POST /api/agents/{id}/commands/{cmd}/ack request
#define AT_ACK_OUTCOME           "outcome"
#define AT_ACK_TICKET            "ticket"
#define AT_ACK_PRICE             "price"
#define AT_ACK_VOLUME            "volume"
#define AT_ACK_COMMISSION        "commission"
#define AT_ACK_ERROR             "error"
// @values POST /api/agents/{id}/commands/{cmd}/ack request outcome
#define AT_OUTCOME_EXECUTED      "executed"
#define AT_OUTCOME_REJECTED      "rejected"
#define AT_OUTCOME_FAILED        "failed"

// @fields POST /api/agents/{id}/trades/sync request
#define AT_SYNC_POSITIONS        "positions"
#define AT_SYNC_CLOSED           "closed"
// @fields POST /api/agents/{id}/trades/sync request positions[]
#define AT_POS_TICKET            "ticket"
#define AT_POS_SYMBOL            "symbol"
#define AT_POS_SIDE              "side"
#define AT_POS_VOLUME            "volume"
#define AT_POS_OPEN_PRICE        "open_price"
#define AT_POS_SL                "sl"
#define AT_POS_TP                "tp"
#define AT_POS_OPENED_AT_MS      "opened_at_ms"
#define AT_POS_COMMENT           "comment"
// @fields POST /api/agents/{id}/trades/sync request closed[]
#define AT_CLOSED_TICKET         "ticket"
#define AT_CLOSED_SYMBOL         "symbol"
#define AT_CLOSED_SIDE           "side"
#define AT_CLOSED_VOLUME         "volume"
#define AT_CLOSED_OPEN_PRICE     "open_price"
#define AT_CLOSED_CLOSE_PRICE    "close_price"
#define AT_CLOSED_CLOSED_AT_MS   "closed_at_ms"
#define AT_CLOSED_PROFIT         "profit"
#define AT_CLOSED_DEAL           "deal"
#define AT_CLOSED_COMMISSION     "commission"
#define AT_CLOSED_SWAP           "swap"
// @fields POST /api/agents/{id}/trades/sync response
#define AT_SYNCR_MATCHED         "matched"
#define AT_SYNCR_CONFLICTS       "conflicts"

// @fields POST /api/market/bars request
#define AT_PUSH_SYMBOL           "symbol"
#define AT_PUSH_TIMEFRAME        "timeframe"
#define AT_PUSH_BARS             "bars"
// @fields POST /api/market/bars request bars[]
#define AT_BAR_TS                "ts"
#define AT_BAR_OPEN              "open"
#define AT_BAR_HIGH              "high"
#define AT_BAR_LOW               "low"
#define AT_BAR_CLOSE             "close"
#define AT_BAR_VOLUME            "volume"
// @values POST /api/market/bars request timeframe
#define AT_TF_1M                 "1m"
#define AT_TF_5M                 "5m"
#define AT_TF_15M                "15m"
#define AT_TF_30M                "30m"
#define AT_TF_1H                 "1h"
#define AT_TF_4H                 "4h"
#define AT_TF_1D                 "1d"
// @fields POST /api/market/bars response
#define AT_PUSHR_COUNTS          "counts"
// @fields POST /api/market/bars response counts
#define AT_PUSHR_REJECTED        "rejected"

// @fields #Problem
#define AT_PROBLEM_DETAIL        "detail"
// @protocol-end -----------------------------------------------------------------------------

#define AT_TIMEOUT_MS        5000        // one WebRequest; it blocks the expert meanwhile
#define AT_POLL_LIMIT        10
#define AT_SYNC_MS           30000       // the protocol asks for a trade sync at least every 30 s
#define AT_BACKOFF_MIN_MS    1000
#define AT_BACKOFF_MAX_MS    60000
#define AT_BARS_PER_PUSH     500
#define AT_CLOSED_LOOKBACK   86400       // closed trades reported in each sync: the last day
#define AT_CLOSED_MAX        500
#define AT_STAMP_HISTORY     (2 * 86400) // a command lives at most a day: older orders are not its
#define AT_COMMENT_MAX       31          // MT5 keeps at most 31 characters of an order comment

//+------------------------------------------------------------------+
//| JSON: a writer for the bodies, a reader for top-level members.   |
//+------------------------------------------------------------------+
string AtQuote(const string text)
  {
   string out = "\"";
   int n = StringLen(text);
   for(int i = 0; i < n; i++)
     {
      ushort c = StringGetCharacter(text, i);
      if(c == '"' || c == '\\')
         out += "\\" + ShortToString(c);
      else if(c < 0x20)
         out += StringFormat("\\u%04x", c);
      else
         out += ShortToString(c);
     }
   return out + "\"";
  }

// A JSON number; NaN or infinity become null, which the services refuse by name.
string AtNumber(const double value, const int digits)
  {
   if(!MathIsValidNumber(value))
      return "null";
   return DoubleToString(value, digits);
  }

// Builds one object: members, then arrays of objects (one level, all the protocol needs).
class CAtJsonWriter
  {
private:
   string            m_text;
   bool              m_first;

   void              Key(const string key)
     {
      if(!m_first)
         m_text += ",";
      m_first = false;
      m_text += "\"" + key + "\":";
     }

public:
                     CAtJsonWriter(void) { m_text = "{"; m_first = true; }
   void              Num(const string key, const double value, const int digits) { Key(key); m_text += AtNumber(value, digits); }
   void              Int(const string key, const long value)    { Key(key); m_text += IntegerToString(value); }
   void              Str(const string key, const string value)  { Key(key); m_text += AtQuote(value); }
   void              Bool(const string key, const bool value)   { Key(key); m_text += value ? "true" : "false"; }
   void              BeginArray(const string key)               { Key(key); m_text += "["; m_first = true; }
   void              EndArray(void)                             { m_text += "]"; m_first = false; }
   void              BeginItem(void)
     {
      if(!m_first)
         m_text += ",";
      m_text += "{";
      m_first = true;
     }
   void              EndItem(void)                              { m_text += "}"; m_first = false; }
   string            Text(void)                                 { return m_text + "}"; }
  };

int AtSkipSpace(const string s, int i)
  {
   int n = StringLen(s);
   while(i < n)
     {
      ushort c = StringGetCharacter(s, i);
      if(c != ' ' && c != '\t' && c != '\r' && c != '\n')
         break;
      i++;
     }
   return i;
  }

// The index just past the JSON value that starts at i.
int AtSkipValue(const string s, int i)
  {
   int n = StringLen(s);
   int depth = 0;
   bool in_string = false;
   for(; i < n; i++)
     {
      ushort c = StringGetCharacter(s, i);
      if(in_string)
        {
         if(c == '\\')
            i++;
         else if(c == '"')
           {
            in_string = false;
            if(depth == 0)
               return i + 1;
           }
         continue;
        }
      if(c == '"')
         in_string = true;
      else if(c == '{' || c == '[')
         depth++;
      else if(c == '}' || c == ']')
        {
         if(depth == 0)
            return i;                   // a number or literal ends at its container's end
         depth--;
         if(depth == 0)
            return i + 1;
        }
      else if(depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n'))
         return i;
     }
   return n;
  }

int AtHexDigit(const ushort c)
  {
   if(c >= '0' && c <= '9')
      return c - '0';
   if(c >= 'a' && c <= 'f')
      return c - 'a' + 10;
   if(c >= 'A' && c <= 'F')
      return c - 'A' + 10;
   return 0;
  }

// The text of a JSON string literal (quotes included in `raw`).
string AtUnquote(const string raw)
  {
   string out = "";
   int n = StringLen(raw) - 1;
   for(int i = 1; i < n; i++)
     {
      ushort c = StringGetCharacter(raw, i);
      if(c != '\\')
        {
         out += ShortToString(c);
         continue;
        }
      ushort e = StringGetCharacter(raw, ++i);
      if(e == 'n')
         out += "\n";
      else if(e == 't')
         out += "\t";
      else if(e == 'r')
         out += "\r";
      else if(e == 'b')
         out += ShortToString(8);
      else if(e == 'f')
         out += ShortToString(12);
      else if(e == 'u')
        {
         int code = 0;
         for(int k = 1; k <= 4; k++)
            code = code * 16 + AtHexDigit(StringGetCharacter(raw, i + k));
         out += ShortToString((ushort)code);
         i += 4;
        }
      else
         out += ShortToString(e);        // \" \\ \/
     }
   return out;
  }

// The raw text of member `key` of the object `json` (top level only), "" when absent.
string AtJsonRaw(const string json, const string key)
  {
   int n = StringLen(json);
   int i = AtSkipSpace(json, 0);
   if(i >= n || StringGetCharacter(json, i) != '{')
      return "";
   i++;
   while(i < n)
     {
      i = AtSkipSpace(json, i);
      if(i >= n || StringGetCharacter(json, i) != '"')
         return "";
      int end = AtSkipValue(json, i);
      string name = AtUnquote(StringSubstr(json, i, end - i));
      i = AtSkipSpace(json, end);
      if(i >= n || StringGetCharacter(json, i) != ':')
         return "";
      i = AtSkipSpace(json, i + 1);
      end = AtSkipValue(json, i);
      if(end <= i)
         return "";
      if(name == key)
         return StringSubstr(json, i, end - i);
      i = AtSkipSpace(json, end);
      if(i < n && StringGetCharacter(json, i) == ',')
         i++;
     }
   return "";
  }

string AtJsonStr(const string json, const string key)
  {
   string raw = AtJsonRaw(json, key);
   if(StringLen(raw) < 2 || StringGetCharacter(raw, 0) != '"')
      return "";
   return AtUnquote(raw);
  }

double AtJsonNum(const string json, const string key)
  {
   string raw = AtJsonRaw(json, key);
   if(raw == "" || raw == "null")
      return 0.0;                        // absent: 0, as MT5 itself says "no SL" or "no TP"
   return StringToDouble(raw);
  }

bool AtJsonHas(const string json, const string key)
  {
   string raw = AtJsonRaw(json, key);
   return raw != "" && raw != "null";
  }

// The elements of a JSON array, each as raw text.
int AtJsonItems(const string array, string &items[])
  {
   ArrayResize(items, 0);
   int n = StringLen(array);
   int i = AtSkipSpace(array, 0);
   if(i >= n || StringGetCharacter(array, i) != '[')
      return 0;
   i++;
   while(i < n)
     {
      i = AtSkipSpace(array, i);
      if(i >= n || StringGetCharacter(array, i) == ']')
         break;
      int end = AtSkipValue(array, i);
      if(end <= i)
         break;
      int k = ArraySize(items);
      ArrayResize(items, k + 1);
      items[k] = StringSubstr(array, i, end - i);
      i = AtSkipSpace(array, end);
      if(i < n && StringGetCharacter(array, i) == ',')
         i++;
     }
   return ArraySize(items);
  }

//+------------------------------------------------------------------+
//| Time and names as the platform counts them.                      |
//+------------------------------------------------------------------+
// Seconds the trade server's clock runs ahead of UTC: MT5 stamps bars, positions and deals in
// server time (GMT+2 or +3 at many brokers); the platform counts in UTC.
long AtServerOffset(void)
  {
   return (long)MathRound((double)(TimeTradeServer() - TimeGMT()) / 900.0) * 900;
  }

string AtTimeframe(const ENUM_TIMEFRAMES period)
  {
   switch(period)
     {
      case PERIOD_M1:
         return AT_TF_1M;
      case PERIOD_M5:
         return AT_TF_5M;
      case PERIOD_M15:
         return AT_TF_15M;
      case PERIOD_M30:
         return AT_TF_30M;
      case PERIOD_H1:
         return AT_TF_1H;
      case PERIOD_H4:
         return AT_TF_4H;
      case PERIOD_D1:
         return AT_TF_1D;
      default:
         return "";
     }
  }

// The comment an order carries for a command: its idempotency key, cut to what MT5 keeps.
string AtStamp(const string idempotency_key)
  {
   return StringSubstr(idempotency_key, 0, AT_COMMENT_MAX);
  }

bool AtTradeAllowed(void)
  {
   return TerminalInfoInteger(TERMINAL_TRADE_ALLOWED) != 0
          && MQLInfoInteger(MQL_TRADE_ALLOWED) != 0
          && AccountInfoInteger(ACCOUNT_TRADE_ALLOWED) != 0
          && AccountInfoInteger(ACCOUNT_TRADE_EXPERT) != 0;
  }

// Selects the open position whose identifier is `id` (the ticket the platform knows it by).
bool AtSelectPosition(const ulong id)
  {
   for(int i = PositionsTotal() - 1; i >= 0; i--)
      if(PositionGetTicket(i) > 0 && (ulong)PositionGetInteger(POSITION_IDENTIFIER) == id)
         return true;
   return false;
  }

// What a command came to: the body of its ack. An empty outcome means "not known yet": no ack
// is sent, the lease runs out, the command comes back and the stamp check settles it then.
struct AtAck
  {
   string            outcome;
   string            ticket;
   double            price;
   double            volume;
   ulong             deal;               // the deal that executed it, if known (its commission)
   string            error;
  };

struct AtClosedTrade
  {
   ulong             position;
   ulong             deal;
   string            symbol;
   string            side;
   double            volume;
   double            close_price;
   long              closed_at_ms;
   double            profit;
   double            commission;
   double            swap;
  };

//+------------------------------------------------------------------+
//| The agent. Call OnTimer from the expert's OnTimer (1 s timer).   |
//+------------------------------------------------------------------+
class CAlgoTradeAgent
  {
private:
   string            m_url;              // the gateway, no trailing slash
   string            m_agent_id;
   string            m_api_key;
   string            m_bar_symbol;       // the chart's symbol as market data names it
   string            m_timeframe;        // "" when the chart's period cannot be pushed
   int               m_heartbeat_ms;
   int               m_poll_ms;
   int               m_poll_wait;
   CTrade            m_trade;
   ulong             m_next_heartbeat;
   ulong             m_next_poll;
   ulong             m_next_sync;
   ulong             m_retry_at;
   ulong             m_backoff_ms;
   int               m_last_error;       // GetLastError() after the last WebRequest
   bool              m_url_warned;
   double            m_rtt_ms;           // round trip of the previous heartbeat, -1 before one
   int               m_pending;          // commands waiting, as the last heartbeat said
   string            m_state;
   datetime          m_last_bar;         // open time (server clock) of the last bar pushed
   string            m_ack_ids[];        // acks not delivered yet, oldest first
   string            m_ack_bodies[];

   int               Call(const string endpoint, const string body, string &answer);
   bool              Answered(const int status, const string answer, const string what);
   bool              Heartbeat(void);
   bool              PollCommands(void);
   bool              FlushAcks(void);
   bool              SyncTrades(void);
   bool              PushBars(void);
   void              Execute(const string command);
   void              QueueAck(const string command_id, const AtAck &ack);
   void              Outcome(const bool sent, AtAck &ack);
   bool              FindStamped(const string stamp, AtAck &ack);
   void              Open(const string command, AtAck &ack);
   void              Close(const string command, AtAck &ack);
   void              Modify(const string command, AtAck &ack);
   void              CloseAll(AtAck &ack);
   void              WritePositions(CAtJsonWriter &w, const long offset);
   void              WriteClosed(CAtJsonWriter &w, const long offset);

public:
                     CAlgoTradeAgent(void);
   bool              Init(const string url, const string agent_id, const string api_key,
                          const int heartbeat_seconds, const int poll_seconds,
                          const int poll_wait_seconds, const ulong magic,
                          const string bar_symbol);
   void              OnTimer(void);
   void              Deinit(void);
  };

CAlgoTradeAgent::CAlgoTradeAgent(void)
  {
   m_backoff_ms = AT_BACKOFF_MIN_MS;
   m_rtt_ms = -1;
   m_pending = 0;
   m_url_warned = false;
  }

// Checks the settings; false (and the reason in the journal) when the agent cannot run.
//
// MT5's WebRequest is synchronous: while it waits, the expert gets no ticks, timer or trade
// events. A 25 s long-poll would freeze it for 25 s, so this agent polls briefly instead
// (poll_wait_seconds, default 0) every poll_seconds, and at once when a heartbeat says commands
// are pending. A command then waits at most about poll_seconds.
bool CAlgoTradeAgent::Init(const string url, const string agent_id, const string api_key,
                           const int heartbeat_seconds, const int poll_seconds,
                           const int poll_wait_seconds, const ulong magic,
                           const string bar_symbol)
  {
   if(MQLInfoInteger(MQL_TESTER) != 0)
     {
      Print("AlgoTrade: the strategy tester has no WebRequest; the agent stays off");
      return false;
     }
   m_url = url;
   while(StringLen(m_url) > 0 && StringGetCharacter(m_url, StringLen(m_url) - 1) == '/')
      m_url = StringSubstr(m_url, 0, StringLen(m_url) - 1);
   if(StringFind(m_url, "https://") != 0 && StringFind(m_url, "http://") != 0)
     {
      Print("AlgoTrade: the URL must start with https:// (the gateway's address)");
      return false;
     }
   if(StringLen(agent_id) != 26 || StringFind(api_key, "atk_") != 0)
     {
      Print("AlgoTrade: set the agent id (26 characters) and its API key (atk_...)");
      return false;
     }
   m_agent_id = agent_id;
   m_api_key = api_key;
   m_heartbeat_ms = MathMax(heartbeat_seconds, 1) * 1000;
   m_poll_ms = MathMax(poll_seconds, 1) * 1000;
   m_poll_wait = MathMax(MathMin(poll_wait_seconds, 3), 0);
   m_bar_symbol = bar_symbol == "" ? _Symbol : bar_symbol;
   m_timeframe = AtTimeframe(Period());
   if(m_timeframe == "")
      Print("AlgoTrade: market data takes M1, M5, M15, M30, H1, H4 and D1 bars; none pushed");
   m_last_bar = iTime(_Symbol, Period(), 1);      // from the next closed bar on
   m_trade.SetExpertMagicNumber(magic);
   m_trade.SetDeviationInPoints(20);
   m_next_heartbeat = 0;
   m_next_poll = 0;
   m_next_sync = 0;
   m_retry_at = 0;
   return true;
  }

// One round of the agent's work; every step returns false when the service is out of reach,
// which ends the round (the backoff decides when the next one starts, with a heartbeat).
void CAlgoTradeAgent::OnTimer(void)
  {
   ulong now = GetTickCount64();
   if(now < m_retry_at)
      return;
   if(now >= m_next_heartbeat)
     {
      if(!Heartbeat())
         return;
      m_next_heartbeat = now + m_heartbeat_ms;
     }
   if(!FlushAcks())
      return;
   if(m_pending > 0 || now >= m_next_poll)
     {
      if(!PollCommands())
         return;
      m_next_poll = now + m_poll_ms;
     }
   if(now >= m_next_sync)
     {
      if(!SyncTrades())
         return;
      m_next_sync = now + AT_SYNC_MS;
     }
   PushBars();
  }

// Delivers what can still be delivered before the expert goes.
void CAlgoTradeAgent::Deinit(void)
  {
   if(ArraySize(m_ack_ids) > 0)
      FlushAcks();
  }

// One HTTP exchange: the status (-1 when none came, GetLastError in m_last_error) and the body.
int CAlgoTradeAgent::Call(const string endpoint, const string body, string &answer)
  {
   int space = StringFind(endpoint, " ");
   string method = StringSubstr(endpoint, 0, space);
   string url = m_url + StringSubstr(endpoint, space + 1);
   string headers = "Content-Type: application/json\r\nAccept: application/json\r\n"
                    + "X-API-Key: " + m_api_key + "\r\n";
   char data[];
   char result[];
   string result_headers;
   if(body != "")
     {
      // StringToCharArray copies the terminating NUL; the services refuse a NUL in JSON.
      int size = StringToCharArray(body, data, 0, WHOLE_ARRAY, CP_UTF8);
      ArrayResize(data, MathMax(size - 1, 0));
     }
   ResetLastError();
   int status = WebRequest(method, url, headers, AT_TIMEOUT_MS, data, result, result_headers);
   m_last_error = GetLastError();
   answer = CharArrayToString(result, 0, WHOLE_ARRAY, CP_UTF8);
   if(status == -1 && m_last_error == 4014 && !m_url_warned)
     {
      m_url_warned = true;
      Alert("AlgoTrade: allow WebRequest for ", m_url,
            " in Tools > Options > Expert Advisors, then restart the expert");
     }
   return status;
  }

// False when the service gave no usable answer (none, 5xx, 429, or a refused key): then the
// agent backs off, 1 s doubling to 60 s, and the next round starts with a heartbeat.
bool CAlgoTradeAgent::Answered(const int status, const string answer, const string what)
  {
   bool down = status == -1 || status == 429 || status >= 500;
   bool refused = status == 401 || status == 403;
   if(status >= 400)
      PrintFormat("AlgoTrade: %s answered %d: %s", what, status,
                  AtJsonStr(answer, AT_PROBLEM_DETAIL));
   else if(status == -1)
      PrintFormat("AlgoTrade: %s: no answer (error %d)", what, m_last_error);
   if(!down && !refused)
     {
      m_backoff_ms = AT_BACKOFF_MIN_MS;
      return true;
     }
   // A refused key will not heal by itself: wait the longest, without flooding the journal.
   ulong delay = refused ? AT_BACKOFF_MAX_MS : m_backoff_ms;
   m_retry_at = GetTickCount64() + delay;
   m_backoff_ms = m_backoff_ms * 2 > AT_BACKOFF_MAX_MS ? AT_BACKOFF_MAX_MS : m_backoff_ms * 2;
   m_next_heartbeat = 0;
   return false;
  }

bool CAlgoTradeAgent::Heartbeat(void)
  {
   CAtJsonWriter w;
   w.Num(AT_HB_BALANCE, AccountInfoDouble(ACCOUNT_BALANCE), 8);
   w.Num(AT_HB_EQUITY, AccountInfoDouble(ACCOUNT_EQUITY), 8);
   w.Num(AT_HB_MARGIN, AccountInfoDouble(ACCOUNT_MARGIN), 8);
   w.Num(AT_HB_FREE_MARGIN, AccountInfoDouble(ACCOUNT_MARGIN_FREE), 8);
   w.Int(AT_HB_OPEN_POSITIONS, PositionsTotal());
   w.Bool(AT_HB_TERMINAL_CONNECTED, TerminalInfoInteger(TERMINAL_CONNECTED) != 0);
   w.Bool(AT_HB_TRADE_ALLOWED, AtTradeAllowed());
   w.Int(AT_HB_CLIENT_TIME_MS, (long)TimeGMT() * 1000);
   if(m_rtt_ms >= 0)
      w.Num(AT_HB_RTT_MS, m_rtt_ms, 1);
   string answer;
   ulong started = GetMicrosecondCount();
   int status = Call(StringFormat(AT_EP_HEARTBEAT, m_agent_id), w.Text(), answer);
   if(!Answered(status, answer, "heartbeat"))
      return false;
   m_rtt_ms = (double)(GetMicrosecondCount() - started) / 1000.0;
   if(status != 200)
      return true;
   m_pending = (int)AtJsonNum(answer, AT_HBA_PENDING_COMMANDS);
   string state = AtJsonStr(answer, AT_HBA_STATE);
   if(state != m_state)
     {
      PrintFormat("AlgoTrade: the platform sees this agent %s", state);
      m_state = state;
     }
   return true;
  }

bool CAlgoTradeAgent::PollCommands(void)
  {
   string answer;
   string endpoint = StringFormat(AT_EP_COMMANDS, m_agent_id, m_poll_wait, AT_POLL_LIMIT);
   int status = Call(endpoint, "", answer);
   if(!Answered(status, answer, "command poll"))
      return false;
   if(status != 200)
      return true;
   string commands[];
   int n = AtJsonItems(AtJsonRaw(answer, AT_LEASED_DATA), commands);
   // Each is acked as soon as it is done: the lease (30 s) runs for all of them at once.
   for(int i = 0; i < n; i++)
     {
      Execute(commands[i]);
      if(!FlushAcks())
         return false;
     }
   m_pending = n == AT_POLL_LIMIT ? 1 : 0;   // a full page: more may wait
   return true;
  }

void CAlgoTradeAgent::Execute(const string command)
  {
   AtAck ack;
   ack.outcome = "";
   ack.ticket = "";
   ack.price = 0;
   ack.volume = 0;
   ack.deal = 0;
   ack.error = "";
   string kind = AtJsonStr(command, AT_CMD_KIND);
   if(kind == AT_KIND_OPEN)
      Open(command, ack);
   else if(kind == AT_KIND_CLOSE)
      Close(command, ack);
   else if(kind == AT_KIND_MODIFY)
      Modify(command, ack);
   else if(kind == AT_KIND_CLOSE_ALL)
      CloseAll(ack);
   else if(kind == AT_KIND_INFO)
     {
      Print("AlgoTrade: ", AtJsonStr(command, AT_CMD_MESSAGE));
      ack.outcome = AT_OUTCOME_EXECUTED;
     }
   else
     {
      ack.outcome = AT_OUTCOME_REJECTED;
      ack.error = "this agent does not know the command kind " + kind;
     }
   QueueAck(AtJsonStr(command, AT_CMD_ID), ack);
  }

// Opens a position stamped with the command's idempotency key, unless a position or deal
// already carries that stamp: then the command was delivered before (its ack was lost) and
// is acked as it went, not executed twice.
void CAlgoTradeAgent::Open(const string command, AtAck &ack)
  {
   string stamp = AtStamp(AtJsonStr(command, AT_CMD_IDEMPOTENCY_KEY));
   if(FindStamped(stamp, ack))
      return;
   string symbol = AtJsonStr(command, AT_CMD_SYMBOL);
   if(!SymbolSelect(symbol, true))
     {
      ack.outcome = AT_OUTCOME_REJECTED;
      ack.error = "no symbol " + symbol + " at this broker";
      return;
     }
   double volume = AtJsonNum(command, AT_CMD_VOLUME);
   double sl = AtJsonNum(command, AT_CMD_SL);
   double tp = AtJsonNum(command, AT_CMD_TP);
   m_trade.SetTypeFillingBySymbol(symbol);
   bool sent = AtJsonStr(command, AT_CMD_SIDE) == AT_SIDE_BUY
               ? m_trade.Buy(volume, symbol, 0.0, sl, tp, stamp)
               : m_trade.Sell(volume, symbol, 0.0, sl, tp, stamp);
   Outcome(sent, ack);
   if(ack.outcome != AT_OUTCOME_EXECUTED)
      return;
   // The position's identifier is the ticket the platform records (and sync reports).
   ulong deal = m_trade.ResultDeal();
   ulong position = m_trade.ResultOrder();
   if(deal > 0 && HistoryDealSelect(deal))
      position = (ulong)HistoryDealGetInteger(deal, DEAL_POSITION_ID);
   ack.ticket = (string)position;
  }

// A position, or a deal that opened one, stamped `stamp`: the ack it earned the first time.
bool CAlgoTradeAgent::FindStamped(const string stamp, AtAck &ack)
  {
   if(stamp == "")
      return false;
   for(int i = PositionsTotal() - 1; i >= 0; i--)
     {
      if(PositionGetTicket(i) == 0 || PositionGetString(POSITION_COMMENT) != stamp)
         continue;
      ack.outcome = AT_OUTCOME_EXECUTED;
      ack.ticket = (string)PositionGetInteger(POSITION_IDENTIFIER);
      ack.price = PositionGetDouble(POSITION_PRICE_OPEN);
      ack.volume = PositionGetDouble(POSITION_VOLUME);
      return true;
     }
   // Opened and closed again since, or merged into another position (netting accounts).
   datetime now = TimeCurrent();
   if(!HistorySelect(now - AT_STAMP_HISTORY, now + 3600))
      return false;
   for(int i = HistoryDealsTotal() - 1; i >= 0; i--)
     {
      ulong deal = HistoryDealGetTicket(i);
      if(HistoryDealGetString(deal, DEAL_COMMENT) != stamp
         || HistoryDealGetInteger(deal, DEAL_ENTRY) != DEAL_ENTRY_IN)
         continue;
      ack.outcome = AT_OUTCOME_EXECUTED;
      ack.ticket = (string)HistoryDealGetInteger(deal, DEAL_POSITION_ID);
      ack.price = HistoryDealGetDouble(deal, DEAL_PRICE);
      ack.volume = HistoryDealGetDouble(deal, DEAL_VOLUME);
      ack.deal = deal;
      return true;
     }
   return false;
  }

// Closing a position that is gone already is done if the history shows it closed: that is a
// close delivered twice. A ticket never seen is rejected.
void CAlgoTradeAgent::Close(const string command, AtAck &ack)
  {
   string ticket = AtJsonStr(command, AT_CMD_TICKET);
   ulong id = (ulong)StringToInteger(ticket);
   ack.ticket = ticket;
   if(AtSelectPosition(id))
     {
      Outcome(m_trade.PositionClose((ulong)PositionGetInteger(POSITION_TICKET)), ack);
      return;
     }
   if(HistorySelectByPosition(id))
      for(int i = HistoryDealsTotal() - 1; i >= 0; i--)
        {
         ulong deal = HistoryDealGetTicket(i);
         long entry = HistoryDealGetInteger(deal, DEAL_ENTRY);
         if(entry != DEAL_ENTRY_OUT && entry != DEAL_ENTRY_OUT_BY)
            continue;
         ack.outcome = AT_OUTCOME_EXECUTED;
         ack.price = HistoryDealGetDouble(deal, DEAL_PRICE);
         ack.volume = HistoryDealGetDouble(deal, DEAL_VOLUME);
         ack.deal = deal;
         return;
        }
   ack.outcome = AT_OUTCOME_REJECTED;
   ack.error = "no position " + ticket + " on this account";
  }

// Sets SL and TP; one the command leaves out keeps its current value. The same change twice
// is "no changes", which counts as done.
void CAlgoTradeAgent::Modify(const string command, AtAck &ack)
  {
   string ticket = AtJsonStr(command, AT_CMD_TICKET);
   ack.ticket = ticket;
   if(!AtSelectPosition((ulong)StringToInteger(ticket)))
     {
      ack.outcome = AT_OUTCOME_REJECTED;
      ack.error = "no open position " + ticket;
      return;
     }
   double sl = AtJsonHas(command, AT_CMD_SL) ? AtJsonNum(command, AT_CMD_SL)
               : PositionGetDouble(POSITION_SL);
   double tp = AtJsonHas(command, AT_CMD_TP) ? AtJsonNum(command, AT_CMD_TP)
               : PositionGetDouble(POSITION_TP);
   Outcome(m_trade.PositionModify((ulong)PositionGetInteger(POSITION_TICKET), sl, tp), ack);
   ack.price = 0;
   ack.volume = 0;
  }

// Closes every position of the account; done when none is left.
void CAlgoTradeAgent::CloseAll(AtAck &ack)
  {
   string errors = "";
   for(int i = PositionsTotal() - 1; i >= 0; i--)
     {
      ulong ticket = PositionGetTicket(i);
      if(ticket == 0)
         continue;
      if(!m_trade.PositionClose(ticket))
         errors += StringFormat("%I64u: %s; ", ticket, m_trade.ResultRetcodeDescription());
     }
   if(PositionsTotal() == 0)
     {
      ack.outcome = AT_OUTCOME_EXECUTED;
      return;
     }
   ack.outcome = AT_OUTCOME_FAILED;
   ack.error = StringFormat("%d positions still open: %s", PositionsTotal(), errors);
  }

// The outcome of the CTrade call just made. A timeout says nothing about the order: no ack
// then (the stamp check settles the command when it comes back).
void CAlgoTradeAgent::Outcome(const bool sent, AtAck &ack)
  {
   uint code = m_trade.ResultRetcode();
   if(code == TRADE_RETCODE_DONE || code == TRADE_RETCODE_DONE_PARTIAL
      || code == TRADE_RETCODE_PLACED || code == TRADE_RETCODE_NO_CHANGES)
     {
      ack.outcome = AT_OUTCOME_EXECUTED;
      ack.price = m_trade.ResultPrice();
      ack.volume = m_trade.ResultVolume();
      ack.deal = m_trade.ResultDeal();
      return;
     }
   if(code == TRADE_RETCODE_TIMEOUT)
     {
      ack.outcome = "";
      return;
     }
   if(!sent && code == 0)
     {
      ack.outcome = AT_OUTCOME_FAILED;           // refused by the terminal before sending
      ack.error = StringFormat("error %d", GetLastError());
      return;
     }
   // The broker said no (rejected), or this side could not trade (failed).
   bool ours = code == TRADE_RETCODE_CONNECTION || code == TRADE_RETCODE_CLIENT_DISABLES_AT
               || code == TRADE_RETCODE_SERVER_DISABLES_AT || code == TRADE_RETCODE_TOO_MANY_REQUESTS;
   ack.outcome = ours ? AT_OUTCOME_FAILED : AT_OUTCOME_REJECTED;
   ack.error = StringFormat("%u %s", code, m_trade.ResultRetcodeDescription());
  }

void CAlgoTradeAgent::QueueAck(const string command_id, const AtAck &ack)
  {
   if(ack.outcome == "" || command_id == "")
      return;
   CAtJsonWriter w;
   w.Str(AT_ACK_OUTCOME, ack.outcome);
   if(ack.ticket != "")
      w.Str(AT_ACK_TICKET, ack.ticket);
   if(ack.price > 0)
      w.Num(AT_ACK_PRICE, ack.price, 8);
   if(ack.volume > 0)
      w.Num(AT_ACK_VOLUME, ack.volume, 8);
   // The deal's commission, as MT5 signs it (negative: charged).
   if(ack.deal > 0 && HistoryDealSelect(ack.deal))
      w.Num(AT_ACK_COMMISSION, HistoryDealGetDouble(ack.deal, DEAL_COMMISSION), 2);
   if(ack.error != "")
      w.Str(AT_ACK_ERROR, StringSubstr(ack.error, 0, 1000));
   int k = ArraySize(m_ack_ids);
   ArrayResize(m_ack_ids, k + 1);
   ArrayResize(m_ack_bodies, k + 1);
   m_ack_ids[k] = command_id;
   m_ack_bodies[k] = w.Text();
  }

// Sends the acks not delivered yet, oldest first; false when the service is out of reach.
bool CAlgoTradeAgent::FlushAcks(void)
  {
   while(ArraySize(m_ack_ids) > 0)
     {
      string answer;
      int status = Call(StringFormat(AT_EP_ACK, m_agent_id, m_ack_ids[0]), m_ack_bodies[0], answer);
      if(!Answered(status, answer, "ack of " + m_ack_ids[0]))
         return false;
      // Recorded, or refused for good (404 forgotten, 409 ended otherwise): done either way.
      ArrayRemove(m_ack_ids, 0, 1);
      ArrayRemove(m_ack_bodies, 0, 1);
     }
   return true;
  }

// Every open position (a position left out is one the terminal no longer holds) and the
// trades closed in the last day.
bool CAlgoTradeAgent::SyncTrades(void)
  {
   long offset = AtServerOffset();
   CAtJsonWriter w;
   WritePositions(w, offset);
   WriteClosed(w, offset);
   string answer;
   int status = Call(StringFormat(AT_EP_SYNC, m_agent_id), w.Text(), answer);
   if(!Answered(status, answer, "trade sync"))
      return false;
   int conflicts = (int)AtJsonNum(answer, AT_SYNCR_CONFLICTS);
   if(status == 200 && conflicts > 0)
      PrintFormat("AlgoTrade: trade sync: %d matched, %d conflicts (see the platform's report)",
                  (int)AtJsonNum(answer, AT_SYNCR_MATCHED), conflicts);
   return true;
  }

void CAlgoTradeAgent::WritePositions(CAtJsonWriter &w, const long offset)
  {
   w.BeginArray(AT_SYNC_POSITIONS);
   for(int i = 0; i < PositionsTotal(); i++)
     {
      if(PositionGetTicket(i) == 0)
         continue;
      string symbol = PositionGetString(POSITION_SYMBOL);
      int digits = (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS);
      bool buy = PositionGetInteger(POSITION_TYPE) == POSITION_TYPE_BUY;
      double sl = PositionGetDouble(POSITION_SL);
      double tp = PositionGetDouble(POSITION_TP);
      w.BeginItem();
      w.Str(AT_POS_TICKET, (string)PositionGetInteger(POSITION_IDENTIFIER));
      w.Str(AT_POS_SYMBOL, symbol);
      w.Str(AT_POS_SIDE, buy ? AT_SIDE_BUY : AT_SIDE_SELL);
      w.Num(AT_POS_VOLUME, PositionGetDouble(POSITION_VOLUME), 8);
      w.Num(AT_POS_OPEN_PRICE, PositionGetDouble(POSITION_PRICE_OPEN), digits);
      // MT5 writes 0 for "no SL/TP"; the platform writes nothing, so 0 is left out.
      if(sl > 0)
         w.Num(AT_POS_SL, sl, digits);
      if(tp > 0)
         w.Num(AT_POS_TP, tp, digits);
      w.Int(AT_POS_OPENED_AT_MS, PositionGetInteger(POSITION_TIME_MSC) - offset * 1000);
      w.Str(AT_POS_COMMENT, PositionGetString(POSITION_COMMENT));
      w.EndItem();
     }
   w.EndArray();
  }

void CAlgoTradeAgent::WriteClosed(CAtJsonWriter &w, const long offset)
  {
   // Collected first: HistorySelectByPosition below replaces the history being walked.
   AtClosedTrade closed[];
   datetime now = TimeCurrent();
   if(HistorySelect(now - AT_CLOSED_LOOKBACK, now + 3600))
      for(int i = HistoryDealsTotal() - 1; i >= 0 && ArraySize(closed) < AT_CLOSED_MAX; i--)
        {
         ulong deal = HistoryDealGetTicket(i);
         long entry = HistoryDealGetInteger(deal, DEAL_ENTRY);
         if(entry != DEAL_ENTRY_OUT && entry != DEAL_ENTRY_OUT_BY)
            continue;
         int k = ArraySize(closed);
         ArrayResize(closed, k + 1);
         closed[k].position = (ulong)HistoryDealGetInteger(deal, DEAL_POSITION_ID);
         closed[k].deal = deal;
         closed[k].symbol = HistoryDealGetString(deal, DEAL_SYMBOL);
         // A selling deal closes a buy position.
         closed[k].side = HistoryDealGetInteger(deal, DEAL_TYPE) == DEAL_TYPE_SELL
                          ? AT_SIDE_BUY : AT_SIDE_SELL;
         closed[k].volume = HistoryDealGetDouble(deal, DEAL_VOLUME);
         closed[k].close_price = HistoryDealGetDouble(deal, DEAL_PRICE);
         closed[k].closed_at_ms = HistoryDealGetInteger(deal, DEAL_TIME_MSC) - offset * 1000;
         closed[k].commission = HistoryDealGetDouble(deal, DEAL_COMMISSION);
         closed[k].swap = HistoryDealGetDouble(deal, DEAL_SWAP);
         closed[k].profit = HistoryDealGetDouble(deal, DEAL_PROFIT)
                            + closed[k].swap + closed[k].commission;
        }
   w.BeginArray(AT_SYNC_CLOSED);
   for(int k = 0; k < ArraySize(closed); k++)
     {
      double open_price = 0;
      if(HistorySelectByPosition(closed[k].position))
         for(int i = 0; i < HistoryDealsTotal(); i++)
           {
            ulong deal = HistoryDealGetTicket(i);
            if(HistoryDealGetInteger(deal, DEAL_ENTRY) == DEAL_ENTRY_IN)
              {
               open_price = HistoryDealGetDouble(deal, DEAL_PRICE);
               break;
              }
           }
      if(open_price <= 0)
         continue;                       // opened before the history the terminal holds
      int digits = (int)SymbolInfoInteger(closed[k].symbol, SYMBOL_DIGITS);
      w.BeginItem();
      w.Str(AT_CLOSED_TICKET, (string)closed[k].position);
      w.Str(AT_CLOSED_SYMBOL, closed[k].symbol);
      w.Str(AT_CLOSED_SIDE, closed[k].side);
      w.Num(AT_CLOSED_VOLUME, closed[k].volume, 8);
      w.Num(AT_CLOSED_OPEN_PRICE, open_price, digits);
      w.Num(AT_CLOSED_CLOSE_PRICE, closed[k].close_price, digits);
      w.Int(AT_CLOSED_CLOSED_AT_MS, closed[k].closed_at_ms);
      w.Num(AT_CLOSED_PROFIT, closed[k].profit, 2);
      // Each closing deal on its own (a partial close too), named: a deal listed by several
      // syncs counts once.
      w.Str(AT_CLOSED_DEAL, (string)closed[k].deal);
      w.Num(AT_CLOSED_COMMISSION, closed[k].commission, 2);
      w.Num(AT_CLOSED_SWAP, closed[k].swap, 2);
      w.EndItem();
     }
   w.EndArray();
  }

// Pushes the chart's bars closed since the last push (at most AT_BARS_PER_PUSH), in UTC.
bool CAlgoTradeAgent::PushBars(void)
  {
   if(m_timeframe == "" || iTime(_Symbol, Period(), 1) <= m_last_bar)
      return true;
   MqlRates rates[];
   int n = CopyRates(_Symbol, Period(), 1, AT_BARS_PER_PUSH, rates);
   if(n <= 0)
      return true;
   long offset = AtServerOffset();
   long step = PeriodSeconds(Period());
   CAtJsonWriter w;
   w.Str(AT_PUSH_SYMBOL, m_bar_symbol);
   w.Str(AT_PUSH_TIMEFRAME, m_timeframe);
   w.BeginArray(AT_PUSH_BARS);
   for(int i = 0; i < n; i++)
     {
      if(rates[i].time <= m_last_bar)
         continue;
      long ts = (long)rates[i].time - offset;
      if(ts % step != 0)
        {
         // Market data counts bar boundaries from the epoch in UTC. At a broker whose day
         // starts at another hour (GMT+2 is common) H4 and D1 bars fall between them.
         PrintFormat("AlgoTrade: %s bars of this broker do not start on UTC boundaries; "
                     "none pushed (use an M1 to H1 chart)", m_timeframe);
         m_timeframe = "";
         return true;
        }
      w.BeginItem();
      w.Int(AT_BAR_TS, ts);
      w.Num(AT_BAR_OPEN, rates[i].open, _Digits);
      w.Num(AT_BAR_HIGH, rates[i].high, _Digits);
      w.Num(AT_BAR_LOW, rates[i].low, _Digits);
      w.Num(AT_BAR_CLOSE, rates[i].close, _Digits);
      w.Num(AT_BAR_VOLUME, (double)rates[i].tick_volume, 1);
      w.EndItem();
     }
   w.EndArray();
   string answer;
   int status = Call(AT_EP_BARS, w.Text(), answer);
   if(!Answered(status, answer, "bar push"))
      return false;
   // Stored (200), partly rejected (207) or refused as a whole (4xx): none of it improves
   // by sending it again, so the push moves on.
   m_last_bar = rates[n - 1].time;
   if(status == 207)
      PrintFormat("AlgoTrade: %d bars rejected by market data",
                  (int)AtJsonNum(AtJsonRaw(answer, AT_PUSHR_COUNTS), AT_PUSHR_REJECTED));
   return true;
  }
//+------------------------------------------------------------------+
