// AlgoTradeExampleStrategy.cs: a NinjaTrader 8 strategy that hosts an AlgoTrade agent on one
// instrument. The platform's commands become managed orders named by the command's idempotency
// key, which is also the position's ticket: a command delivered twice (after a lost ack) finds
// its entry by that name and is acked, not executed again. The chart's closed bars are pushed
// to market data. Needs AlgoTradeAgent.cs (AddOns); see clients/README.md.
#region Using declarations
using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using NinjaTrader.Cbi;
using NinjaTrader.Data;
using NinjaTrader.NinjaScript.AlgoTrade;
#endregion

namespace NinjaTrader.NinjaScript.Strategies
{
    public class AlgoTradeExampleStrategy : Strategy, IAgentTerminal
    {
        // One entry signal: what the platform calls a position with a ticket.
        private sealed class Entry
        {
            public string Side;
            public int Quantity;         // filled and not yet exited
            public int Entered;
            public double Price;
            public double? Sl;
            public double? Tp;
            public DateTime OpenedUtc;
        }

        // An order neither filled nor refused in this time has an unknown outcome: no ack.
        private static readonly TimeSpan OrderWait = TimeSpan.FromSeconds(15);

        private readonly object _book = new object();   // guards the collections below
        private readonly Dictionary<string, Entry> _entries = new Dictionary<string, Entry>();
        private readonly List<ClosedTrade> _closed = new List<ClosedTrade>();   // exit executions
        private readonly Dictionary<string, double> _commissions =
            new Dictionary<string, double>();                               // by order name
        private readonly Dictionary<string, TaskCompletionSource<CommandAck>> _waiting =
            new Dictionary<string, TaskCompletionSource<CommandAck>>();   // by order name
        private readonly List<TaskCompletionSource<CommandAck>> _flatWaiting =
            new List<TaskCompletionSource<CommandAck>>();
        private AlgoTradeAgent _agent;
        private string _symbol;

        [Display(Name = "Gateway URL", Order = 1, GroupName = "AlgoTrade")]
        public string Url { get; set; }

        [Display(Name = "Agent id", Order = 2, GroupName = "AlgoTrade")]
        public string AgentId { get; set; }

        [PasswordPropertyText(true)]
        [Display(Name = "API key (atk_...)", Order = 3, GroupName = "AlgoTrade")]
        public string ApiKey { get; set; }

        [Display(Name = "Symbol for bars and commands (empty: the instrument's)", Order = 4, GroupName = "AlgoTrade")]
        public string AgentSymbol { get; set; }

        protected override void OnStateChange()
        {
            if (State == State.SetDefaults)
            {
                Name = "AlgoTradeExampleStrategy";
                Description = "Executes AlgoTrade commands on this instrument and pushes its bars.";
                Calculate = Calculate.OnBarClose;
                EntriesPerDirection = 100;
                EntryHandling = EntryHandling.UniqueEntries;
                StopTargetHandling = StopTargetHandling.PerEntryExecution;
                IsExitOnSessionCloseStrategy = false;
                // A refused order is a "rejected" ack, not a reason to stop the strategy.
                RealtimeErrorHandling = RealtimeErrorHandling.IgnoreAllErrors;
                Url = "https://algotrade.example.com";
                AgentId = "";
                ApiKey = "";
                AgentSymbol = "";
            }
            else if (State == State.DataLoaded)
            {
                // Market data names symbols with letters, digits, '-' and '.': "ES 03-25" -> "ES-03-25".
                _symbol = string.IsNullOrEmpty(AgentSymbol) ? Instrument.FullName.Replace(' ', '-') : AgentSymbol;
            }
            else if (State == State.Realtime)
            {
                var options = new AgentOptions { BaseUrl = Url, AgentId = AgentId, ApiKey = ApiKey };
                _agent = new AlgoTradeAgent(options, this, message => Print(message));
                _agent.Start();
            }
            else if (State == State.Terminated)
            {
                if (_agent != null)
                {
                    _agent.Dispose();
                    _agent = null;
                }
            }
        }

        // Enqueue only: the agent's own thread sends.
        protected override void OnBarUpdate()
        {
            if (State != State.Realtime || _agent == null || BarsInProgress != 0)
                return;
            string timeframe = TimeframeOf(BarsPeriod);
            if (timeframe == null)
                return;
            // Time[0] is the bar's close in NinjaTrader's time zone; the platform counts opens in
            // UTC, and a daily bar by its trading date.
            DateTime openUtc = timeframe == Timeframes.D1
                ? DateTime.SpecifyKind(Time[0].Date, DateTimeKind.Utc)
                : ToUtc(Time[0]).AddMinutes(-BarsPeriod.Value);
            _agent.EnqueueBar(_symbol, timeframe, openUtc, Open[0], High[0], Low[0], Close[0], Volume[0]);
        }

        // ---- IAgentTerminal: read on the agent's threads ----

        public HeartbeatBody ReadAccount()
        {
            Account account = Account;
            Currency currency = account.Denomination;
            return new HeartbeatBody
            {
                Balance = account.Get(AccountItem.CashValue, currency),
                Equity = account.Get(AccountItem.NetLiquidation, currency),
                Margin = Math.Max(0, account.Get(AccountItem.InitialMargin, currency)),
                FreeMargin = account.Get(AccountItem.ExcessInitialMargin, currency),
                OpenPositions = account.Positions.Count,
                TerminalConnected = account.Connection != null && account.Connection.Status == ConnectionStatus.Connected,
                TradeAllowed = State == State.Realtime,
            };
        }

        // This strategy's entries (all of them: one left out reads as closed) and its recent exits.
        public TradeSync ReadTrades()
        {
            lock (_book)
            {
                long dayAgo = UnixMs(DateTime.UtcNow.AddDays(-1));
                _closed.RemoveAll(t => t.ClosedAtMs < dayAgo);
                var sync = new TradeSync { Positions = new List<SyncedPosition>(), Closed = new List<ClosedTrade>(_closed) };
                foreach (KeyValuePair<string, Entry> item in _entries)
                {
                    Entry e = item.Value;
                    if (e.Quantity <= 0)
                        continue;
                    sync.Positions.Add(new SyncedPosition
                    {
                        Ticket = item.Key, Symbol = _symbol, Side = e.Side, Volume = e.Quantity,
                        OpenPrice = e.Price, Sl = e.Sl, Tp = e.Tp, OpenedAtMs = UnixMs(e.OpenedUtc),
                    });
                }
                return sync;
            }
        }

        public Task<CommandAck> ExecuteAsync(AgentCommand command, CancellationToken cancel)
        {
            var done = new TaskCompletionSource<CommandAck>();
            // Orders belong on the strategy's thread; TriggerCustomEvent runs the action there.
            TriggerCustomEvent(state =>
            {
                try
                {
                    Execute(command, done);
                }
                catch (Exception e)
                {
                    done.TrySetResult(new CommandAck { Outcome = Outcomes.Failed, Error = e.Message });
                }
            }, null);
            return WaitOrUnknown(done.Task, cancel);
        }

        private static async Task<CommandAck> WaitOrUnknown(Task<CommandAck> outcome, CancellationToken cancel)
        {
            Task first = await Task.WhenAny(outcome, Task.Delay(OrderWait, cancel)).ConfigureAwait(false);
            cancel.ThrowIfCancellationRequested();
            return first == outcome ? outcome.Result : null;
        }

        // ---- commands, on the strategy's thread ----

        private void Execute(AgentCommand c, TaskCompletionSource<CommandAck> done)
        {
            switch (c.Kind)
            {
                case CommandKinds.Open:
                    Open(c, done);
                    return;
                case CommandKinds.Close:
                    Close(c, done);
                    return;
                case CommandKinds.Modify:
                    Modify(c, done);
                    return;
                case CommandKinds.CloseAll:
                    CloseAll(done);
                    return;
                case CommandKinds.Info:
                    Print("AlgoTrade: " + c.Message);
                    done.TrySetResult(Executed(null, null, null));
                    return;
                default:
                    done.TrySetResult(Refused("this agent does not know the command kind " + c.Kind));
                    return;
            }
        }

        private void Open(AgentCommand c, TaskCompletionSource<CommandAck> done)
        {
            string key = c.IdempotencyKey;
            lock (_book)
            {
                if (Attach(key, done))
                    return;                                  // still working: its fill answers both
                Entry entry;
                if (_entries.TryGetValue(key, out entry))    // delivered before, its ack lost
                {
                    done.TrySetResult(Executed(key, entry.Price, entry.Entered));
                    return;
                }
                List<ClosedTrade> closed = _closed.FindAll(t => t.Ticket == key);
                if (closed.Count > 0)                        // ... and closed since
                {
                    done.TrySetResult(Executed(key, closed[0].OpenPrice, closed.Sum(t => t.Volume)));
                    return;
                }
            }
            if (c.Symbol != _symbol && c.Symbol != Instrument.MasterInstrument.Name)
            {
                done.TrySetResult(Refused("this strategy trades " + _symbol));
                return;
            }
            double volume = c.Volume ?? 0;
            int quantity = (int)Math.Round(volume);
            if (quantity < 1 || Math.Abs(quantity - volume) > 1e-9)
            {
                done.TrySetResult(Refused("NinjaTrader trades whole contracts"));
                return;
            }
            // Stops and targets follow the entry's signal name; set before the entry is sent.
            if (c.Sl.HasValue)
                SetStopLoss(key, CalculationMode.Price, c.Sl.Value, false);
            if (c.Tp.HasValue)
                SetProfitTarget(key, CalculationMode.Price, c.Tp.Value);
            lock (_book)
            {
                _entries[key] = new Entry { Side = c.Side, Sl = c.Sl, Tp = c.Tp };
                _waiting[key] = done;
            }
            Order order = c.Side == Sides.Buy ? EnterLong(quantity, key) : EnterShort(quantity, key);
            if (order == null)
                Settle(key, Refused("NinjaTrader ignored the entry (see its log; an entry against the position reverses it)"));
        }

        private void Close(AgentCommand c, TaskCompletionSource<CommandAck> done)
        {
            string name = "close:" + c.IdempotencyKey;
            Entry entry;
            lock (_book)
            {
                if (Attach(name, done))
                    return;
                if (!_entries.TryGetValue(c.Ticket, out entry) || entry.Quantity <= 0)
                {
                    ClosedTrade closed = _closed.FindLast(t => t.Ticket == c.Ticket);
                    done.TrySetResult(closed != null
                        ? Executed(c.Ticket, closed.ClosePrice, closed.Volume)   // a close delivered twice
                        : Refused("no open entry " + c.Ticket));
                    return;
                }
                _waiting[name] = done;
            }
            Order order = entry.Side == Sides.Buy
                ? ExitLong(entry.Quantity, name, c.Ticket)
                : ExitShort(entry.Quantity, name, c.Ticket);
            if (order == null)
                Settle(name, Refused("NinjaTrader ignored the exit (see its log)"));
        }

        // Moves the entry's stop or target (the same values twice change nothing).
        private void Modify(AgentCommand c, TaskCompletionSource<CommandAck> done)
        {
            lock (_book)
            {
                Entry entry;
                if (!_entries.TryGetValue(c.Ticket, out entry) || entry.Quantity <= 0)
                {
                    done.TrySetResult(Refused("no open entry " + c.Ticket));
                    return;
                }
                if (c.Sl.HasValue)
                    entry.Sl = c.Sl;
                if (c.Tp.HasValue)
                    entry.Tp = c.Tp;
            }
            if (c.Sl.HasValue)
                SetStopLoss(c.Ticket, CalculationMode.Price, c.Sl.Value, false);
            if (c.Tp.HasValue)
                SetProfitTarget(c.Ticket, CalculationMode.Price, c.Tp.Value);
            done.TrySetResult(Executed(c.Ticket, null, null));
        }

        // Flattens what this strategy holds; done when OnPositionUpdate reports it flat.
        private void CloseAll(TaskCompletionSource<CommandAck> done)
        {
            if (Position.MarketPosition == MarketPosition.Flat)
            {
                done.TrySetResult(Executed(null, null, null));
                return;
            }
            lock (_book)
                _flatWaiting.Add(done);
            if (Position.MarketPosition == MarketPosition.Long)
                ExitLong();
            else
                ExitShort();
        }

        // ---- what the broker did ----

        protected override void OnExecutionUpdate(Execution execution, string executionId, double price,
            int quantity, MarketPosition marketPosition, string orderId, DateTime time)
        {
            Order order = execution.Order;
            bool entering = IsEntry(order);
            string ticket = TicketOf(order);
            double commission;
            lock (_book)
            {
                _commissions.TryGetValue(order.Name, out commission);
                _commissions[order.Name] = commission += execution.Commission;
                Entry entry;
                if (ticket != null && _entries.TryGetValue(ticket, out entry))
                {
                    if (entering)
                    {
                        if (entry.Entered == 0)
                            entry.OpenedUtc = ToUtc(time);
                        entry.Quantity += quantity;
                        entry.Entered += quantity;
                        entry.Price = order.AverageFillPrice;
                    }
                    else
                    {
                        entry.Quantity -= quantity;
                        Exited(ticket, entry, executionId, execution.Commission, price, quantity, time);
                        if (entry.Quantity <= 0)
                            _entries.Remove(ticket);
                    }
                }
            }
            if (order.OrderState == OrderState.Filled)
            {
                CommandAck ack = Executed(ticket, order.AverageFillPrice, order.Filled);
                ack.Commission = -commission;
                lock (_book)
                    _commissions.Remove(order.Name);
                Settle(order.Name, ack);
            }
        }

        protected override void OnOrderUpdate(Order order, double limitPrice, double stopPrice, int quantity,
            int filled, double averageFillPrice, OrderState orderState, DateTime time, ErrorCode error, string comment)
        {
            if (orderState != OrderState.Rejected && orderState != OrderState.Cancelled)
                return;
            if (filled > 0)
            {
                Settle(order.Name, Executed(TicketOf(order), averageFillPrice, filled));
                return;
            }
            lock (_book)
            {
                Entry entry;
                if (_entries.TryGetValue(order.Name, out entry) && entry.Entered == 0)
                    _entries.Remove(order.Name);             // an entry that never was
            }
            Settle(order.Name, Refused(orderState + ": " + (string.IsNullOrEmpty(comment) ? error.ToString() : comment)));
        }

        protected override void OnPositionUpdate(Position position, double averagePrice, int quantity,
            MarketPosition marketPosition)
        {
            if (marketPosition != MarketPosition.Flat)
                return;
            List<TaskCompletionSource<CommandAck>> waiting;
            lock (_book)
            {
                waiting = new List<TaskCompletionSource<CommandAck>>(_flatWaiting);
                _flatWaiting.Clear();
            }
            foreach (TaskCompletionSource<CommandAck> done in waiting)
                done.TrySetResult(Executed(null, null, null));
        }

        // ---- helpers (callers hold _book where they touch the collections) ----

        // One exit execution of the entry (its stop, its target, the session's close; whole or part).
        private void Exited(string ticket, Entry entry, string executionId, double commission,
            double price, int quantity, DateTime time)
        {
            double direction = entry.Side == Sides.Buy ? 1 : -1;
            _closed.Add(new ClosedTrade
            {
                Ticket = ticket, Deal = DealName(executionId), Symbol = _symbol, Side = entry.Side, Volume = quantity,
                OpenPrice = entry.Price, ClosePrice = price, ClosedAtMs = UnixMs(ToUtc(time)),
                Profit = (price - entry.Price) * quantity * Instrument.MasterInstrument.PointValue * direction,
                Commission = -commission,
            });
        }

        // The platform's names are [A-Za-z0-9_.:-], at most 64 characters.
        private static string DealName(string executionId)
        {
            var name = new string(executionId.Select(ch => char.IsLetterOrDigit(ch) && ch < 128 || "_.:-".IndexOf(ch) >= 0 ? ch : '_').ToArray());
            return name.Length > 64 ? name.Substring(0, 64) : name;
        }

        // A second delivery of a command whose order is still working waits for that order.
        private bool Attach(string name, TaskCompletionSource<CommandAck> done)
        {
            TaskCompletionSource<CommandAck> working;
            if (!_waiting.TryGetValue(name, out working))
                return false;
            working.Task.ContinueWith(t => done.TrySetResult(t.Result), TaskContinuationOptions.ExecuteSynchronously);
            return true;
        }

        private void Settle(string name, CommandAck ack)
        {
            TaskCompletionSource<CommandAck> done;
            lock (_book)
            {
                if (name == null || !_waiting.TryGetValue(name, out done))
                    return;
                _waiting.Remove(name);
            }
            done.TrySetResult(ack);
        }

        private static bool IsEntry(Order order)
        {
            return order.OrderAction == OrderAction.Buy || order.OrderAction == OrderAction.SellShort;
        }

        // An entry is its own ticket; an exit names the entry it closes.
        private static string TicketOf(Order order)
        {
            return IsEntry(order) ? order.Name : order.FromEntrySignal;
        }

        private static CommandAck Executed(string ticket, double? price, double? volume)
        {
            return new CommandAck { Outcome = Outcomes.Executed, Ticket = ticket, Price = price, Volume = volume };
        }

        private static CommandAck Refused(string why)
        {
            return new CommandAck { Outcome = Outcomes.Rejected, Error = why };
        }

        private static string TimeframeOf(BarsPeriod period)
        {
            if (period.BarsPeriodType == BarsPeriodType.Day && period.Value == 1)
                return Timeframes.D1;
            if (period.BarsPeriodType != BarsPeriodType.Minute)
                return null;
            switch (period.Value)
            {
                case 1: return Timeframes.M1;
                case 5: return Timeframes.M5;
                case 15: return Timeframes.M15;
                case 30: return Timeframes.M30;
                case 60: return Timeframes.H1;
                case 240: return Timeframes.H4;
                default: return null;
            }
        }

        private static DateTime ToUtc(DateTime platformTime)
        {
            return TimeZoneInfo.ConvertTimeToUtc(DateTime.SpecifyKind(platformTime, DateTimeKind.Unspecified),
                Core.Globals.GeneralOptions.TimeZoneInfo);
        }

        private static long UnixMs(DateTime utc)
        {
            return (long)(utc - new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc)).TotalMilliseconds;
        }
    }
}
