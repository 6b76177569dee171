// AlgoTradeAgent.cs: an AlgoTrade Beta2 execution agent for NinjaTrader 8 (NinjaScript, C# 5,
// .NET Framework 4.8). Heartbeats, commands (long-poll, execute, ack), trade sync and bar push
// over HTTPS to the platform's gateway. The strategy that hosts it implements IAgentTerminal:
// see AlgoTradeExampleStrategy.cs. Protocol: docs/agents.md. Install: clients/README.md.
//
// Threads: OnBarUpdate only enqueues (EnqueueBar never blocks). Two background loops do the
// network work: the session loop (heartbeat, which doubles as the health check, then queued
// bars, then the trade sync every 30 s) and the command loop (long-poll, execute, ack). Both
// back off exponentially (1 s doubling to 60 s, with jitter) while the service is out of reach.
#region Using declarations
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Runtime.Serialization;
using System.Runtime.Serialization.Json;
using System.Threading;
using System.Threading.Tasks;
#endregion

namespace NinjaTrader.NinjaScript.AlgoTrade
{
    // @protocol-begin -----------------------------------------------------------------------
    // Every path, JSON field and enum value this client uses, checked against the services'
    // OpenAPI by tests/test_agent_clients.py. JSON is read and written only through these DTOs.

    internal static class Endpoints
    {
        // {0} is the agent id, {1} the command id (or the poll's wait), {2} the poll's limit.
        public static readonly Endpoint<HeartbeatBody, HeartbeatAnswer> Heartbeat =
            new Endpoint<HeartbeatBody, HeartbeatAnswer>("POST /api/agents/{0}/heartbeat");
        public static readonly Endpoint<NoBody, CommandsLeased> Commands =
            new Endpoint<NoBody, CommandsLeased>("GET /api/agents/{0}/commands?wait={1}&limit={2}");
        public static readonly Endpoint<CommandAck, AgentCommand> Ack =
            new Endpoint<CommandAck, AgentCommand>("POST /api/agents/{0}/commands/{1}/ack");
        public static readonly Endpoint<TradeSync, SyncReport> Sync =
            new Endpoint<TradeSync, SyncReport>("POST /api/agents/{0}/trades/sync");
        public static readonly Endpoint<BarsPush, PushResult> Bars =
            new Endpoint<BarsPush, PushResult>("POST /api/market/bars");
    }

    // @fields POST /api/agents/{id}/heartbeat request
    [DataContract]
    public sealed class HeartbeatBody
    {
        [DataMember(Name = "balance")] public double Balance;
        [DataMember(Name = "equity")] public double Equity;
        [DataMember(Name = "margin")] public double Margin;
        [DataMember(Name = "free_margin")] public double FreeMargin;
        [DataMember(Name = "open_positions")] public int OpenPositions;
        [DataMember(Name = "terminal_connected")] public bool TerminalConnected;
        [DataMember(Name = "trade_allowed")] public bool TradeAllowed;
        [DataMember(Name = "client_time_ms", EmitDefaultValue = false)] public long? ClientTimeMs;
        [DataMember(Name = "rtt_ms", EmitDefaultValue = false)] public double? RttMs;
    }

    // @fields POST /api/agents/{id}/heartbeat response
    [DataContract]
    public sealed class HeartbeatAnswer
    {
        [DataMember(Name = "server_time_ms")] public long ServerTimeMs;
        [DataMember(Name = "pending_commands")] public int PendingCommands;
        [DataMember(Name = "state")] public string State;
    }

    // @fields GET /api/agents/{id}/commands response
    [DataContract]
    public sealed class CommandsLeased
    {
        [DataMember(Name = "data")] public List<AgentCommand> Data;
        [DataMember(Name = "lease_ms")] public long LeaseMs;
    }

    // @fields GET /api/agents/{id}/commands response data[] | POST /api/agents/{id}/commands/{cmd}/ack response
    [DataContract]
    public sealed class AgentCommand
    {
        [DataMember(Name = "id")] public string Id;
        [DataMember(Name = "kind")] public string Kind;
        [DataMember(Name = "state")] public string State;
        [DataMember(Name = "idempotency_key")] public string IdempotencyKey;
        [DataMember(Name = "attempts")] public int Attempts;
        [DataMember(Name = "symbol")] public string Symbol;
        [DataMember(Name = "side")] public string Side;
        [DataMember(Name = "volume")] public double? Volume;
        [DataMember(Name = "ticket")] public string Ticket;
        [DataMember(Name = "sl")] public double? Sl;
        [DataMember(Name = "tp")] public double? Tp;
        [DataMember(Name = "message")] public string Message;
    }

    // @values GET /api/agents/{id}/commands response data[] kind
    public static class CommandKinds
    {
        public const string CloseAll = "close_all";
        public const string Close = "close";
        public const string Modify = "modify";
        public const string Open = "open";
        public const string Info = "info";
    }

    // @values GET /api/agents/{id}/commands response data[] side | POST /api/agents/{id}/trades/sync request positions[] side | POST /api/agents/{id}/trades/sync request closed[] side
    public static class Sides
    {
        public const string Buy = "buy";
        public const string Sell = "sell";
    }

    // @fields POST /api/agents/{id}/commands/{cmd}/ack request
    [DataContract]
    public sealed class CommandAck
    {
        [DataMember(Name = "outcome")] public string Outcome;
        [DataMember(Name = "ticket", EmitDefaultValue = false)] public string Ticket;
        [DataMember(Name = "price", EmitDefaultValue = false)] public double? Price;
        [DataMember(Name = "volume", EmitDefaultValue = false)] public double? Volume;
        // Negative: charged (NinjaTrader's Execution.Commission is the cost, so its negative).
        [DataMember(Name = "commission", EmitDefaultValue = false)] public double? Commission;
        [DataMember(Name = "error", EmitDefaultValue = false)] public string Error;
    }

    // @values POST /api/agents/{id}/commands/{cmd}/ack request outcome
    public static class Outcomes
    {
        public const string Executed = "executed";
        public const string Rejected = "rejected";
        public const string Failed = "failed";
    }

    // @fields POST /api/agents/{id}/trades/sync request
    [DataContract]
    public sealed class TradeSync
    {
        [DataMember(Name = "positions")] public List<SyncedPosition> Positions;
        [DataMember(Name = "closed")] public List<ClosedTrade> Closed;
    }

    // @fields POST /api/agents/{id}/trades/sync request positions[]
    [DataContract]
    public sealed class SyncedPosition
    {
        [DataMember(Name = "ticket")] public string Ticket;
        [DataMember(Name = "symbol")] public string Symbol;
        [DataMember(Name = "side")] public string Side;
        [DataMember(Name = "volume")] public double Volume;
        [DataMember(Name = "open_price")] public double OpenPrice;
        [DataMember(Name = "sl", EmitDefaultValue = false)] public double? Sl;
        [DataMember(Name = "tp", EmitDefaultValue = false)] public double? Tp;
        [DataMember(Name = "opened_at_ms", EmitDefaultValue = false)] public long? OpenedAtMs;
    }

    // @fields POST /api/agents/{id}/trades/sync request closed[]
    [DataContract]
    public sealed class ClosedTrade
    {
        [DataMember(Name = "ticket")] public string Ticket;
        [DataMember(Name = "symbol")] public string Symbol;
        [DataMember(Name = "side")] public string Side;
        [DataMember(Name = "volume")] public double Volume;
        [DataMember(Name = "open_price")] public double OpenPrice;
        [DataMember(Name = "close_price")] public double ClosePrice;
        [DataMember(Name = "closed_at_ms")] public long ClosedAtMs;
        [DataMember(Name = "profit")] public double Profit;
        // One closing execution (a partial exit too), named: listed by several syncs, it counts once.
        [DataMember(Name = "deal", EmitDefaultValue = false)] public string Deal;
        [DataMember(Name = "commission")] public double Commission;
        [DataMember(Name = "swap")] public double Swap;
    }

    // @fields POST /api/agents/{id}/trades/sync response
    [DataContract]
    public sealed class SyncReport
    {
        [DataMember(Name = "matched")] public int Matched;
        [DataMember(Name = "conflicts")] public int Conflicts;
    }

    // @fields POST /api/market/bars request
    [DataContract]
    public sealed class BarsPush
    {
        [DataMember(Name = "symbol")] public string Symbol;
        [DataMember(Name = "timeframe")] public string Timeframe;
        [DataMember(Name = "bars")] public List<PushedBar> Bars;
    }

    // @fields POST /api/market/bars request bars[]
    [DataContract]
    public sealed class PushedBar
    {
        [DataMember(Name = "ts")] public long Ts;    // open time, epoch seconds (UTC)
        [DataMember(Name = "open")] public double Open;
        [DataMember(Name = "high")] public double High;
        [DataMember(Name = "low")] public double Low;
        [DataMember(Name = "close")] public double Close;
        [DataMember(Name = "volume")] public double Volume;
    }

    // @values POST /api/market/bars request timeframe
    public static class Timeframes
    {
        public const string M1 = "1m";
        public const string M5 = "5m";
        public const string M15 = "15m";
        public const string M30 = "30m";
        public const string H1 = "1h";
        public const string H4 = "4h";
        public const string D1 = "1d";
    }

    // @fields POST /api/market/bars response
    [DataContract]
    public sealed class PushResult
    {
        [DataMember(Name = "received")] public int Received;
        [DataMember(Name = "counts")] public PushCounts Counts;
    }

    // @fields POST /api/market/bars response counts
    [DataContract]
    public sealed class PushCounts
    {
        [DataMember(Name = "rejected")] public int Rejected;
    }

    // @fields #Problem
    [DataContract]
    public sealed class Problem
    {
        [DataMember(Name = "title")] public string Title;
        [DataMember(Name = "detail")] public string Detail;
    }
    // @protocol-end -------------------------------------------------------------------------

    /// <summary>A route of the API with the types of its body and of its answer.</summary>
    public sealed class Endpoint<TRequest, TResponse>
    {
        public readonly HttpMethod Method;
        public readonly string PathFormat;

        public Endpoint(string route)
        {
            int space = route.IndexOf(' ');
            Method = new HttpMethod(route.Substring(0, space));
            PathFormat = route.Substring(space + 1);
        }
    }

    /// <summary>The body of a request that has none.</summary>
    public sealed class NoBody
    {
    }

    /// <summary>What the agent needs from the strategy that hosts it. ReadAccount and ReadTrades
    /// run on the agent's threads; ExecuteAsync must carry the order to the strategy's own
    /// thread (TriggerCustomEvent) and complete with the ack, or with null when the outcome is
    /// not known yet (no ack: the command comes back after its lease, and the signal name shows
    /// whether it was executed).</summary>
    public interface IAgentTerminal
    {
        HeartbeatBody ReadAccount();
        TradeSync ReadTrades();
        Task<CommandAck> ExecuteAsync(AgentCommand command, CancellationToken cancel);
    }

    public sealed class AgentOptions
    {
        public string BaseUrl;                 // the gateway, https://...
        public string AgentId;                 // from the registration answer
        public string ApiKey;                  // atk_..., shown once at registration
        public TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(5);   // as registered
        public TimeSpan SyncInterval = TimeSpan.FromSeconds(30);       // at most 30 s
        public TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);
        public int PollWaitSeconds = 25;       // under the gateway's 30 s upstream timeout
        public int PollLimit = 10;
        public int MaxBarsPerPush = 500;
        public int MaxQueuedBars = 10000;      // beyond, the oldest bars are dropped
    }

    /// <summary>An answer other than 2xx: its status and the problem's detail.</summary>
    public sealed class AgentHttpException : Exception
    {
        public readonly int Status;

        public AgentHttpException(int status, string detail)
            : base(string.Format(CultureInfo.InvariantCulture, "HTTP {0}: {1}", status, detail))
        {
            Status = status;
        }

        /// <summary>Worth sending again later: the service is busy or down, not the request wrong.</summary>
        public bool Transient
        {
            get { return Status == 408 || Status == 429 || Status >= 500; }
        }
    }

    public sealed class AlgoTradeAgent : IDisposable
    {
        private sealed class QueuedBar
        {
            public string Symbol;
            public string Timeframe;
            public PushedBar Bar;
        }

        private sealed class PendingAck
        {
            public string CommandId;
            public CommandAck Ack;
        }

        private readonly AgentOptions _options;
        private readonly IAgentTerminal _terminal;
        private readonly Action<string> _log;
        private readonly string _baseUrl;
        private readonly HttpClient _http;
        private readonly ConcurrentQueue<QueuedBar> _bars = new ConcurrentQueue<QueuedBar>();
        private readonly SemaphoreSlim _barsQueued = new SemaphoreSlim(0);
        private readonly CancellationTokenSource _stop = new CancellationTokenSource();
        private readonly List<PendingAck> _acks = new List<PendingAck>();   // command loop only
        private readonly List<QueuedBar> _batch = new List<QueuedBar>();    // session loop only
        private Task _sessionLoop;
        private Task _commandLoop;
        private double? _lastRttMs;
        private string _lastState;
        private int _droppedBars;
        private int _disposed;

        public AlgoTradeAgent(AgentOptions options, IAgentTerminal terminal, Action<string> log)
        {
            if (string.IsNullOrEmpty(options.AgentId) || options.ApiKey == null || !options.ApiKey.StartsWith("atk_"))
                throw new ArgumentException("set the agent id and its API key (atk_...)");
            _options = options;
            _terminal = terminal;
            _log = log;
            _baseUrl = options.BaseUrl.TrimEnd('/');
            // .NET Framework may still offer TLS 1.0 first; the gateway speaks 1.2 and later.
            ServicePointManager.SecurityProtocol |= SecurityProtocolType.Tls12;
            // Timeouts are per request (a long-poll waits longer than a heartbeat).
            _http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
            _http.DefaultRequestHeaders.Add("X-API-Key", options.ApiKey);
            _http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        }

        public void Start()
        {
            CancellationToken stop = _stop.Token;
            _sessionLoop = Task.Run(() => SessionLoopAsync(stop));
            _commandLoop = Task.Run(() => CommandLoopAsync(stop));
        }

        /// <summary>Queues a closed bar for the push; returns at once (call it from OnBarUpdate).
        /// <paramref name="openTimeUtc"/> is the bar's open time in UTC.</summary>
        public void EnqueueBar(string symbol, string timeframe, DateTime openTimeUtc,
            double open, double high, double low, double close, double volume)
        {
            if (Volatile.Read(ref _disposed) == 1)
                return;
            var bar = new PushedBar
            {
                Ts = (long)(openTimeUtc - new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc)).TotalSeconds,
                Open = open, High = high, Low = low, Close = close, Volume = volume,
            };
            _bars.Enqueue(new QueuedBar { Symbol = symbol, Timeframe = timeframe, Bar = bar });
            QueuedBar dropped;
            while (_bars.Count > _options.MaxQueuedBars && _bars.TryDequeue(out dropped))
                Interlocked.Increment(ref _droppedBars);
            if (_barsQueued.CurrentCount == 0)
                _barsQueued.Release();
        }

        /// <summary>Stops both loops (waiting a few seconds for them) and releases the client.</summary>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 1)
                return;
            _stop.Cancel();
            var loops = new List<Task>();
            if (_sessionLoop != null) loops.Add(_sessionLoop);
            if (_commandLoop != null) loops.Add(_commandLoop);
            try
            {
                Task.WaitAll(loops.ToArray(), TimeSpan.FromSeconds(5));
            }
            catch (AggregateException)
            {
                // The loops end by cancellation; anything else was logged where it happened.
            }
            _http.Dispose();
            _barsQueued.Dispose();
            _stop.Dispose();
        }

        // ---- session loop: heartbeat (the health check), then bars, then the trade sync ----

        private async Task SessionLoopAsync(CancellationToken stop)
        {
            var backoff = new Backoff();
            DateTime nextHeartbeat = DateTime.MinValue;
            DateTime nextSync = DateTime.MinValue;
            while (!stop.IsCancellationRequested)
            {
                Exception failure = null;   // C# 5 cannot await in a catch block
                try
                {
                    // Nothing is sent until a heartbeat has been answered in this interval.
                    if (DateTime.UtcNow >= nextHeartbeat)
                    {
                        await HeartbeatAsync(stop).ConfigureAwait(false);
                        nextHeartbeat = DateTime.UtcNow + _options.HeartbeatInterval;
                    }
                    await PushBarsAsync(stop).ConfigureAwait(false);
                    if (DateTime.UtcNow >= nextSync)
                    {
                        await SyncTradesAsync(stop).ConfigureAwait(false);
                        nextSync = DateTime.UtcNow + _options.SyncInterval;
                    }
                    backoff.Reset();
                    TimeSpan idle = nextHeartbeat - DateTime.UtcNow;
                    if (idle > TimeSpan.Zero)
                        await _barsQueued.WaitAsync(idle, stop).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    failure = e;
                }
                if (failure == null)
                    continue;
                if (stop.IsCancellationRequested)
                    break;
                nextHeartbeat = DateTime.MinValue;   // reconnect starts with a heartbeat
                if (!await WaitAfterFailureAsync(backoff, "session", failure, stop).ConfigureAwait(false))
                    break;
            }
        }

        private async Task HeartbeatAsync(CancellationToken stop)
        {
            HeartbeatBody body = _terminal.ReadAccount();
            body.ClientTimeMs = UnixMs(DateTime.UtcNow);
            body.RttMs = _lastRttMs;
            var watch = Stopwatch.StartNew();
            HeartbeatAnswer answer = await SendAsync(Endpoints.Heartbeat, body, _options.RequestTimeout,
                stop, _options.AgentId).ConfigureAwait(false);
            _lastRttMs = watch.Elapsed.TotalMilliseconds;
            if (answer.State != _lastState)
            {
                _log("AlgoTrade: the platform sees this agent " + answer.State);
                _lastState = answer.State;
            }
        }

        private async Task PushBarsAsync(CancellationToken stop)
        {
            while (true)
            {
                // A batch stays until it is stored or refused for good: a failed push keeps it.
                if (_batch.Count == 0)
                    TakeBatch();
                if (_batch.Count == 0)
                    return;
                var body = new BarsPush
                {
                    Symbol = _batch[0].Symbol,
                    Timeframe = _batch[0].Timeframe,
                    Bars = _batch.ConvertAll(q => q.Bar),
                };
                try
                {
                    PushResult result = await SendAsync(Endpoints.Bars, body, _options.RequestTimeout, stop)
                        .ConfigureAwait(false);
                    if (result.Counts != null && result.Counts.Rejected > 0)
                        _log(string.Format("AlgoTrade: market data rejected {0} of {1} bars",
                            result.Counts.Rejected, result.Received));
                }
                catch (AgentHttpException e)
                {
                    if (e.Transient)
                        throw;
                    _log("AlgoTrade: bars refused, dropped: " + e.Message);
                }
                _batch.Clear();
                int dropped = Interlocked.Exchange(ref _droppedBars, 0);
                if (dropped > 0)
                    _log(string.Format("AlgoTrade: {0} queued bars were dropped while offline", dropped));
            }
        }

        // The next bars of one series (a push carries one symbol and timeframe).
        private void TakeBatch()
        {
            QueuedBar next;
            while (_batch.Count < _options.MaxBarsPerPush && _bars.TryPeek(out next))
            {
                if (_batch.Count > 0 && (next.Symbol != _batch[0].Symbol || next.Timeframe != _batch[0].Timeframe))
                    return;
                if (_bars.TryDequeue(out next))
                    _batch.Add(next);
            }
        }

        private async Task SyncTradesAsync(CancellationToken stop)
        {
            TradeSync body = _terminal.ReadTrades();
            SyncReport report = await SendAsync(Endpoints.Sync, body, _options.RequestTimeout, stop,
                _options.AgentId).ConfigureAwait(false);
            if (report.Conflicts > 0)
                _log(string.Format("AlgoTrade: trade sync: {0} matched, {1} conflicts (see the platform's report)",
                    report.Matched, report.Conflicts));
        }

        // ---- command loop: long-poll, execute, ack ----

        private async Task CommandLoopAsync(CancellationToken stop)
        {
            var backoff = new Backoff();
            TimeSpan pollTimeout = TimeSpan.FromSeconds(_options.PollWaitSeconds) + _options.RequestTimeout;
            while (!stop.IsCancellationRequested)
            {
                Exception failure = null;
                try
                {
                    await FlushAcksAsync(stop).ConfigureAwait(false);
                    CommandsLeased leased = await SendAsync(Endpoints.Commands, null, pollTimeout, stop,
                        _options.AgentId, _options.PollWaitSeconds, _options.PollLimit).ConfigureAwait(false);
                    // Each is acked as soon as it is done: the lease runs for all of them at once.
                    foreach (AgentCommand command in leased.Data ?? new List<AgentCommand>())
                    {
                        CommandAck ack = await ExecuteAsync(command, stop).ConfigureAwait(false);
                        if (ack != null)
                            _acks.Add(new PendingAck { CommandId = command.Id, Ack = ack });
                        await FlushAcksAsync(stop).ConfigureAwait(false);
                    }
                    backoff.Reset();
                }
                catch (Exception e)
                {
                    failure = e;
                }
                if (failure == null)
                    continue;
                if (stop.IsCancellationRequested)
                    break;
                if (!await WaitAfterFailureAsync(backoff, "commands", failure, stop).ConfigureAwait(false))
                    break;
            }
        }

        private async Task<CommandAck> ExecuteAsync(AgentCommand command, CancellationToken stop)
        {
            try
            {
                return await _terminal.ExecuteAsync(command, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                throw;
            }
            catch (Exception e)
            {
                return new CommandAck { Outcome = Outcomes.Failed, Error = Truncate(e.Message, 1000) };
            }
        }

        private async Task FlushAcksAsync(CancellationToken stop)
        {
            while (_acks.Count > 0)
            {
                PendingAck pending = _acks[0];
                try
                {
                    await SendAsync(Endpoints.Ack, pending.Ack, _options.RequestTimeout, stop,
                        _options.AgentId, pending.CommandId).ConfigureAwait(false);
                }
                catch (AgentHttpException e)
                {
                    if (e.Transient)
                        throw;
                    // 404 (forgotten) or 409 (ended otherwise): sending it again cannot help.
                    _log("AlgoTrade: ack of " + pending.CommandId + " refused: " + e.Message);
                }
                _acks.RemoveAt(0);
            }
        }

        // ---- transport ----

        private async Task<TResponse> SendAsync<TRequest, TResponse>(Endpoint<TRequest, TResponse> endpoint,
            TRequest body, TimeSpan timeout, CancellationToken stop, params object[] pathArgs)
            where TRequest : class
        {
            string path = string.Format(CultureInfo.InvariantCulture, endpoint.PathFormat, pathArgs);
            using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(stop))
            using (var request = new HttpRequestMessage(endpoint.Method, _baseUrl + path))
            {
                deadline.CancelAfter(timeout);
                if (body != null)
                {
                    request.Content = new ByteArrayContent(Json.Write(body));
                    request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                }
                using (HttpResponseMessage response = await _http.SendAsync(request, deadline.Token).ConfigureAwait(false))
                {
                    byte[] answer = await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                    int status = (int)response.StatusCode;
                    if (status >= 200 && status < 300)
                        return Json.Read<TResponse>(answer);
                    throw new AgentHttpException(status, ProblemDetail(answer));
                }
            }
        }

        private static string ProblemDetail(byte[] answer)
        {
            try
            {
                Problem problem = Json.Read<Problem>(answer);
                return problem.Detail ?? problem.Title ?? "";
            }
            catch (SerializationException)
            {
                return "(no problem document)";
            }
        }

        // False when the agent is stopping. A refused key (401/403) waits the longest at once.
        private async Task<bool> WaitAfterFailureAsync(Backoff backoff, string loop, Exception e, CancellationToken stop)
        {
            var http = e as AgentHttpException;
            TimeSpan delay = http != null && (http.Status == 401 || http.Status == 403) ? Backoff.Max : backoff.Next();
            _log(string.Format(CultureInfo.InvariantCulture, "AlgoTrade {0}: {1}; again in {2:0.#} s",
                loop, e.Message, delay.TotalSeconds));
            try
            {
                await Task.Delay(delay, stop).ConfigureAwait(false);
                return true;
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }

        private static long UnixMs(DateTime utc)
        {
            return (long)(utc - new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc)).TotalMilliseconds;
        }

        private static string Truncate(string text, int length)
        {
            return text == null || text.Length <= length ? text : text.Substring(0, length);
        }

        /// <summary>1 s doubling to 60 s, each with up to a quarter more at random, so that many
        /// agents coming back after an outage do not all knock at once.</summary>
        private sealed class Backoff
        {
            public static readonly TimeSpan Max = TimeSpan.FromSeconds(60);
            private static readonly TimeSpan Min = TimeSpan.FromSeconds(1);
            private readonly Random _jitter = new Random(Guid.NewGuid().GetHashCode());
            private TimeSpan _next = Min;

            public TimeSpan Next()
            {
                TimeSpan delay = _next;
                _next = TimeSpan.FromTicks(Math.Min(_next.Ticks * 2, Max.Ticks));
                return delay + TimeSpan.FromTicks((long)(delay.Ticks * 0.25 * _jitter.NextDouble()));
            }

            public void Reset()
            {
                _next = Min;
            }
        }
    }

    /// <summary>DataContractJsonSerializer: part of .NET Framework, no package needed. A null
    /// member marked EmitDefaultValue = false is left out; members the service adds are ignored.</summary>
    internal static class Json
    {
        public static byte[] Write<T>(T value)
        {
            var serializer = new DataContractJsonSerializer(typeof(T));
            using (var stream = new MemoryStream())
            {
                serializer.WriteObject(stream, value);
                return stream.ToArray();
            }
        }

        public static T Read<T>(byte[] json)
        {
            var serializer = new DataContractJsonSerializer(typeof(T));
            using (var stream = new MemoryStream(json))
            {
                return (T)serializer.ReadObject(stream);
            }
        }
    }
}
