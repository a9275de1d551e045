// Polymarket Insights dashboard: plain JavaScript, no build step, no network but this service.
//
// Data flow: GET /status (every few seconds) tells the WebSocket port; the page connects to
// ws://<this host>:<ws_port>/, answers the server's `hello` with `resume` since the last seq it
// holds (0 at first: the hub replays the history it keeps), and then applies broadcasts live.
// Every broadcast carries a `seq`; a seq already applied is dropped, so a replay after a
// reconnect or a `lagged` notice never shows a row twice.  Strings reach the DOM only through
// textContent / attributes, never innerHTML.
'use strict';

(function () {
  const CONFIG = {
    maxWhaleRows: 500,        // whale rows kept in the DOM (newest first)
    maxMarketRows: 200,       // market rows shown (by 24 h volume); more are kept in memory
    maxMarketsKept: 5000,     // markets remembered (least recently updated dropped beyond)
    maxPredictionRows: 60,    // prediction cards shown (newest first)
    statusIntervalMs: 3000,   // /status poll
    backoffMinMs: 500,        // reconnect: min·2ⁿ up to max, plus up to 20 % jitter
    backoffMaxMs: 15000,
    pingIntervalMs: 15000,    // application ping; no frame within pongTimeoutMs → reconnect
    pongTimeoutMs: 10000,
    renderDelayMs: 200,       // markets/predictions re-sorted at most this often
    aheadLimit: 20000,        // seqs held above a gap before the gap is given up
  };

  const params = new URLSearchParams(window.location.search);
  const token = params.get('token');

  // ---------------------------------------------------------------------------------------
  // small helpers

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value === null || value === undefined || value === false) continue;
        if (key === 'className') node.className = value;
        else if (key === 'text') node.textContent = String(value);
        else node.setAttribute(key, String(value));
      }
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function withToken(url) {
    if (!token) return url;
    return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
  }

  function str(value) {
    return value === null || value === undefined ? '' : String(value);
  }

  function num(value) {
    const n = typeof value === 'number' ? value : (typeof value === 'string' && value !== '' ? Number(value) : NaN);
    return Number.isFinite(n) ? n : null;
  }

  const usd0 = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumFractionDigits: 0 });
  const int0 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

  function fmtUsd(value) {
    const n = num(value);
    if (n === null) return '–';
    if (Math.abs(n) >= 1e6) return '$' + (n / 1e6).toFixed(2) + 'M';
    return usd0.format(n);
  }

  function fmtInt(value) {
    const n = num(value);
    return n === null ? '–' : int0.format(n);
  }

  function fmtPrice(value) {      // 0.713 → 71.3¢
    const n = num(value);
    return n === null ? '–' : (n * 100).toFixed(1) + '¢';
  }

  function fmtPct(value) {
    const n = num(value);
    return n === null ? '–' : Math.round(n * 100) + '%';
  }

  function fmtAge(seconds) {
    const n = num(seconds);
    if (n === null) return '–';
    if (n < 60) return n.toFixed(n < 10 ? 1 : 0) + ' s';
    if (n < 3600) return Math.floor(n / 60) + ' min';
    if (n < 86400) return (n / 3600).toFixed(1) + ' h';
    return (n / 86400).toFixed(1) + ' d';
  }

  function fmtTime(iso) {
    const d = new Date(str(iso));
    if (Number.isNaN(d.getTime())) return str(iso);
    const now = new Date();
    const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
    if (d.toDateString() === now.toDateString()) return time;
    return d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + time;
  }

  // Links only to polymarket.com over https (anything else is shown as plain text).
  function safePolymarketUrl(value) {
    const text = str(value);
    try {
      const url = new URL(text);
      if (url.protocol === 'https:' && (url.hostname === 'polymarket.com' || url.hostname.endsWith('.polymarket.com'))) {
        return url.href;
      }
    } catch (e) { /* not a URL */ }
    return null;
  }

  function link(text, href, className) {
    const safe = safePolymarketUrl(href);
    if (!safe) return el('span', { className, text });
    return el('a', { className, href: safe, target: '_blank', rel: 'noopener noreferrer', text });
  }

  function shortWallet(wallet) {
    const w = str(wallet);
    return w.length > 14 ? w.slice(0, 6) + '…' + w.slice(-4) : w;
  }

  // ---------------------------------------------------------------------------------------
  // seq bookkeeping: which broadcasts were applied, and where to resume from

  class SeqTracker {
    constructor() { this.reset(); }

    reset() {
      this.contiguous = 0;     // every seq ≤ this was applied (or is known to be gone)
      this.ahead = new Set();  // applied seqs above a gap
      this.max = 0;
    }

    // true when seq is new (apply it), false for a duplicate
    accept(seq) {
      if (seq <= this.contiguous || this.ahead.has(seq)) return false;
      this.ahead.add(seq);
      if (seq > this.max) this.max = seq;
      this.advance();
      if (this.ahead.size > CONFIG.aheadLimit) {   // a gap nobody fills: give it up
        let lowest = Infinity;
        for (const s of this.ahead) if (s < lowest) lowest = s;
        this.skipBelow(lowest);
      }
      return true;
    }

    // everything below `seq` is gone (resume_gap): stop waiting for it
    skipBelow(seq) {
      if (seq - 1 <= this.contiguous) return;
      this.contiguous = seq - 1;
      for (const s of this.ahead) if (s <= this.contiguous) this.ahead.delete(s);
      this.advance();
    }

    advance() {
      while (this.ahead.has(this.contiguous + 1)) {
        this.ahead.delete(this.contiguous + 1);
        this.contiguous += 1;
      }
    }
  }

  const seqs = new SeqTracker();
  // A restarted service numbers from 1 again: rows are ordered by (epoch, seq).
  let epoch = 0;
  let duplicates = 0;

  // ---------------------------------------------------------------------------------------
  // whale tape: newest first, at most maxWhaleRows rows

  const whaleRows = $('whale-rows');
  const whales = [];               // {key, tradeId, row}, sorted by key, newest first
  const whaleIds = new Set();      // trade ids on the tape

  function whaleKey(seq) { return epoch * 1e12 + seq; }

  function addWhale(seq, data) {
    const tradeId = str(data.trade_id) || ('seq-' + epoch + '-' + seq);
    if (whaleIds.has(tradeId)) { duplicates += 1; return; }
    const key = whaleKey(seq);
    let lo = 0, hi = whales.length;         // first index with a smaller key
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (whales[mid].key > key) lo = mid + 1; else hi = mid;
    }
    if (lo >= CONFIG.maxWhaleRows) return;  // older than every row of a full tape
    const row = whaleRow(seq, tradeId, data);
    whaleRows.insertBefore(row, lo < whales.length ? whales[lo].row : null);
    whales.splice(lo, 0, { key, tradeId, row });
    whaleIds.add(tradeId);
    while (whales.length > CONFIG.maxWhaleRows) {
      const old = whales.pop();
      old.row.remove();
      whaleIds.delete(old.tradeId);
    }
    const count = $('whale-count');
    count.textContent = String(whales.length);
    count.dataset.count = String(whales.length);
    $('whales-empty').hidden = true;
  }

  function whaleRow(seq, tradeId, d) {
    const tier = str(d.tier) || 'whale';
    const action = str(d.action).toUpperCase();
    const side = str(d.side) || str(d.outcome).toUpperCase();
    // the trader's Polymarket name; an unnamed account's default name is its wallet plus digits
    const trader = str(d.trader);
    const who = trader && !/^0x[0-9a-fA-F]{40}/.test(trader) ? trader : shortWallet(d.wallet);
    const wallet = str(d.wallet);
    const walletCell = /^0x[0-9a-fA-F]{40}$/.test(wallet)
      ? el('a', { href: 'https://polymarket.com/profile/' + wallet, target: '_blank', rel: 'noopener noreferrer',
                  title: wallet, text: who })
      : el('span', { title: wallet, text: who });
    return el('tr', { className: 'whale tier-' + tier.replace(/[^a-z_]/g, ''), 'data-seq': seq,
                      'data-trade-id': tradeId, 'data-tier': tier },
      el('td', { className: 'time', title: str(d.timestamp), text: fmtTime(d.timestamp) }),
      el('td', { className: 'num amount', text: fmtUsd(d.amount) }),
      el('td', { className: 'side ' + (action === 'SELL' ? 'sell' : 'buy') },
        el('span', { className: 'action', text: action ? action.toLowerCase() + ' ' : '' }),
        el('span', { className: 'outcome', text: side })),
      el('td', { className: 'num price', text: fmtPrice(d.price) }),
      el('td', { className: 'market' }, link(str(d.market) || str(d.condition_id), d.url, 'title')),
      el('td', { className: 'wallet' }, walletCell));
  }

  // ---------------------------------------------------------------------------------------
  // markets: one row per market, updated in place; re-sorted by 24 h volume now and then

  const marketRows = $('market-rows');
  const markets = new Map();       // condition_id → {data, row, cells}

  function updateMarket(data) {
    const id = str(data.condition_id);
    if (!id) return;
    let entry = markets.get(id);
    if (entry) {
      markets.delete(id);          // re-insert: the Map's order is least recently updated first
    } else {
      entry = { data: null, row: null, cells: null };
    }
    const before = entry.data ? num(entry.data.price) : null;
    entry.data = data;
    entry.move = before === null || num(data.price) === null ? '' : (num(data.price) > before ? 'up'
      : (num(data.price) < before ? 'down' : entry.move || ''));
    markets.set(id, entry);
    if (markets.size > CONFIG.maxMarketsKept) {
      const [oldId, old] = markets.entries().next().value;
      if (old.row) old.row.remove();
      markets.delete(oldId);
    }
    if (entry.row) fillMarketRow(entry);
    marketsDirty = true;
    if (predictions.has(id)) predictionsDirty = true;   // its card shows the live price
    scheduleRender();
  }

  function fillMarketRow(entry) {
    const d = entry.data;
    const c = entry.cells;
    c.title.replaceChildren(link(str(d.title) || str(d.condition_id), d.url, 'title'));
    c.price.textContent = fmtPrice(d.price);
    c.price.className = 'num price ' + (entry.move || '');
    const bid = num(d.best_bid), ask = num(d.best_ask);
    c.book.textContent = bid === null && ask === null ? '–' : fmtPrice(bid) + ' / ' + fmtPrice(ask);
    c.volume.textContent = fmtUsd(d.volume_24h);
    c.time.textContent = fmtTime(d.timestamp);
    c.time.title = str(d.timestamp);
    entry.row.dataset.price = str(d.price);
    entry.row.dataset.volume = str(d.volume_24h);
  }

  function marketRow(id, entry) {
    const cells = {
      title: el('td', { className: 'market' }), price: el('td', { className: 'num price' }),
      book: el('td', { className: 'num book' }), volume: el('td', { className: 'num volume' }),
      time: el('td', { className: 'time' }),
    };
    entry.cells = cells;
    entry.row = el('tr', { className: 'market-row', 'data-condition-id': id },
      cells.title, cells.price, cells.book, cells.volume, cells.time);
    fillMarketRow(entry);
    return entry.row;
  }

  function renderMarkets() {
    const sorted = [...markets.entries()].sort((a, b) =>
      (num(b[1].data.volume_24h) || 0) - (num(a[1].data.volume_24h) || 0));
    sorted.slice(0, CONFIG.maxMarketRows).forEach(([id, entry], index) => {
      if (!entry.row) marketRow(id, entry);
      if (marketRows.children[index] !== entry.row) marketRows.insertBefore(entry.row, marketRows.children[index] || null);
    });
    for (const [, entry] of sorted.slice(CONFIG.maxMarketRows)) {
      if (entry.row) { entry.row.remove(); entry.row = null; entry.cells = null; }
    }
    const count = $('market-count');
    count.textContent = String(markets.size);
    count.dataset.count = String(markets.size);
    $('markets-empty').hidden = markets.size > 0;
  }

  // ---------------------------------------------------------------------------------------
  // predictions: the latest swarm forecast per market, beside the market's price

  const predictionList = $('prediction-list');
  const predictions = new Map();   // condition_id → {data, key}
  let aiEnabled = null;            // from /status (null: not known yet)

  function updatePrediction(seq, data) {
    const id = str(data.condition_id);
    if (!id) return;
    const key = whaleKey(seq);
    const known = predictions.get(id);
    if (known && known.key > key) return;      // an older forecast replayed late
    predictions.set(id, { data, key });
    predictionsDirty = true;
    scheduleRender();
  }

  function renderPredictions() {
    const sorted = [...predictions.entries()].sort((a, b) => b[1].key - a[1].key).slice(0, CONFIG.maxPredictionRows);
    predictionList.replaceChildren(...sorted.map(([id, p]) => predictionCard(id, p.data)));
    const count = $('prediction-count');
    count.textContent = String(predictions.size);
    count.dataset.count = String(predictions.size);
    const empty = $('predictions-empty');
    empty.hidden = predictions.size > 0;
    empty.textContent = aiEnabled === false
      ? 'AI analysis is off (OPENROUTER_API_KEY is not set): no predictions.'
      : 'No predictions yet: forecasts appear here as the AI swarm analyses markets.';
    empty.dataset.ai = aiEnabled === null ? 'unknown' : (aiEnabled ? 'on' : 'off');
  }

  function predictionCard(id, d) {
    const live = markets.get(id);
    const marketPrice = live ? num(live.data.price) : num(d.market_price);
    const votes = d.votes && typeof d.votes === 'object' ? Object.entries(d.votes) : [];
    const models = Array.isArray(d.models) ? d.models : [];
    const outcomes = Array.isArray(d.outcomes) && d.outcomes.length ? d.outcomes.map(str) : ['Yes', 'No'];
    return el('div', { className: 'prediction', 'data-condition-id': id, 'data-outcome': str(d.outcome) },
      el('div', { className: 'p-title' }, link(str(d.title) || id, d.url, 'title')),
      el('div', { className: 'p-figures' },
        el('span', { className: 'p-market', title: 'market price of ' + outcomes[0] },
          'market ', el('b', { text: fmtPrice(marketPrice) })),
        el('span', { className: 'p-swarm', title: 'swarm: median probability of ' + outcomes[0] },
          'swarm ', el('b', { text: fmtPct(d.probability) })),
        el('span', { className: 'p-outcome', text: '→ ' + str(d.outcome) }),
        el('span', { className: 'p-conf', text: 'confidence ' + fmtPct(d.confidence) }),
        el('span', { className: 'p-votes', text: votes.map(([k, v]) => k + ' ' + fmtInt(v)).join(' · ') })),
      el('ul', { className: 'models' }, ...models.map((m) => {
        const model = str(m && m.model);
        return el('li', { className: 'model-vote', 'data-model': model, 'data-outcome': str(m && m.outcome),
                          title: str(m && m.reasoning) },
          el('span', { className: 'm-name', text: model.split('/').pop() }),
          el('span', { className: 'm-vote', text: str(m && m.outcome) }),
          el('span', { className: 'm-prob', text: fmtPct(m && m.probability) }));
      })),
      el('div', { className: 'p-time meta', title: str(d.timestamp), text: fmtTime(d.timestamp) }));
  }

  // ---------------------------------------------------------------------------------------
  // batched re-rendering of the sorted panels

  let renderTimer = null;
  let marketsDirty = false;
  let predictionsDirty = false;

  function scheduleRender() {
    if (renderTimer !== null) return;
    renderTimer = setTimeout(() => {
      renderTimer = null;
      if (marketsDirty) { marketsDirty = false; renderMarkets(); }
      if (predictionsDirty) { predictionsDirty = false; renderPredictions(); }
    }, CONFIG.renderDelayMs);
  }

  // ---------------------------------------------------------------------------------------
  // the WebSocket connection

  const connBadge = $('conn-state');
  let ws = null;
  let wsPort = null;
  let startedAt = null;            // the service's start time, to notice a restarted service
  let connections = 0;             // connections that got a hello
  let dials = 0;                   // connection attempts
  let attempt = 0;                 // failed attempts in a row (backoff)
  let reconnectTimer = null;
  let pingTimer = null;
  let pongTimer = null;
  let catchUpTo = 0;               // after `lagged`: lagged until every seq up to this is in
  let connState = 'connecting';

  function setConn(state, detail) {
    connState = state;
    connBadge.dataset.state = state;
    const label = { connecting: 'connecting…', connected: 'live', reconnecting: 'reconnecting…',
                    lagged: 'lagged: catching up…' }[state] || state;
    connBadge.textContent = detail ? label + ' (' + detail + ')' : label;
    updateFeedMeta();
  }

  function updateFeedMeta() {
    connBadge.dataset.connections = String(connections);
    connBadge.dataset.lastSeq = String(seqs.contiguous);
    connBadge.dataset.duplicates = String(duplicates);
    $('feed-meta').textContent = 'seq ' + seqs.contiguous + (duplicates ? ' · ' + duplicates + ' duplicates dropped' : '');
  }

  function wsUrl(port) {
    const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
    return withToken(scheme + '://' + window.location.hostname + ':' + port + '/');
  }

  function send(sock, message) {
    if (sock && sock.readyState === WebSocket.OPEN) sock.send(JSON.stringify(message));
  }

  async function connect() {
    reconnectTimer = null;
    dials += 1;
    connBadge.dataset.dials = String(dials);
    setConn(connections ? 'reconnecting' : 'connecting');
    await pollStatus();          // learns ws_port (a restarted WebSocket server may have a new one)
    if (!wsPort) { scheduleReconnect('waiting for /status'); return; }
    let sock;
    try {
      sock = new WebSocket(wsUrl(wsPort));
    } catch (e) {
      scheduleReconnect('bad address');
      return;
    }
    ws = sock;
    sock.onopen = () => { if (ws === sock) armPing(sock); };
    sock.onmessage = (event) => { if (ws === sock) onFrame(sock, event.data); };
    sock.onclose = (event) => { if (ws === sock) dropConnection(event.code ? 'closed ' + event.code : 'closed'); };
    sock.onerror = () => { /* onclose follows */ };
  }

  function dropConnection(reason) {
    const sock = ws;
    ws = null;
    clearTimeout(pingTimer);
    clearTimeout(pongTimer);
    pingTimer = pongTimer = null;
    if (sock && sock.readyState <= WebSocket.OPEN) {
      try { sock.close(); } catch (e) { /* already closing */ }
    }
    scheduleReconnect(reason);
  }

  function scheduleReconnect(reason) {
    if (reconnectTimer !== null) return;
    const base = Math.min(CONFIG.backoffMaxMs, CONFIG.backoffMinMs * 2 ** Math.min(attempt, 16));
    const delay = base * (1 + 0.2 * Math.random());
    attempt += 1;
    connBadge.dataset.attempt = String(attempt);
    setConn(connections ? 'reconnecting' : 'connecting', reason);
    reconnectTimer = setTimeout(connect, delay);
  }

  function armPing(sock) {
    clearTimeout(pingTimer);
    pingTimer = setTimeout(() => {
      if (ws !== sock) return;
      send(sock, { type: 'ping' });
      clearTimeout(pongTimer);
      pongTimer = setTimeout(() => { if (ws === sock) dropConnection('no answer to ping'); }, CONFIG.pongTimeoutMs);
    }, CONFIG.pingIntervalMs);
  }

  function onFrame(sock, text) {
    clearTimeout(pongTimer);       // any frame proves the connection is alive
    pongTimer = null;
    armPing(sock);
    let message;
    try { message = JSON.parse(text); } catch (e) { return; }
    if (!message || typeof message !== 'object') return;
    if (message.type === 'batch' && Array.isArray(message.data)) {
      for (const item of message.data) if (item && typeof item === 'object') onMessage(sock, item);
    } else {
      onMessage(sock, message);
    }
    updateFeedMeta();
  }

  function resume(sock, since) {
    send(sock, { type: 'resume', data: { since } });
    connBadge.dataset.resumedSince = String(since);
  }

  function onMessage(sock, message) {
    const data = message.data && typeof message.data === 'object' ? message.data : {};
    switch (message.type) {
      case 'hello': {
        const helloSeq = num(data.seq);
        if (helloSeq !== null && helloSeq < seqs.contiguous) newEpoch();   // the service restarted
        connections += 1;
        attempt = 0;
        connBadge.dataset.attempt = '0';
        connBadge.dataset.helloSeq = str(helloSeq);
        resume(sock, seqs.contiguous);   // 0 at first: the history the hub holds
        setConn('connected');
        return;
      }
      case 'lagged': {
        const from = num(data.resume_from);
        catchUpTo = Math.max(seqs.max, from || 0);
        resume(sock, Math.min(from === null ? seqs.contiguous : from, seqs.contiguous));
        setConn('lagged', fmtInt(data.missed) + ' missed');
        return;
      }
      case 'error':
        if (data.code === 'resume_gap') {
          const oldest = num(data.oldest_seq);
          if (oldest !== null) seqs.skipBelow(oldest);   // older broadcasts are gone for good
          connBadge.dataset.resumeGap = str(oldest);
        } else {
          console.warn('server error', data.code, data.message);
        }
        return;
      case 'pong':
      case 'subscribed':
        return;
      default:
        break;
    }
    const seq = num(message.seq);
    if (seq !== null) {
      if (!seqs.accept(seq)) { duplicates += 1; return; }
    }
    if (connState === 'lagged' && seqs.contiguous >= catchUpTo) setConn('connected');
    const key = seq === null ? seqs.max : seq;
    switch (message.type) {
      case 'whale_trade': addWhale(key, data); break;
      case 'market_update': updateMarket(data); break;
      case 'prediction': updatePrediction(key, data); break;
      default: break;               // a type this page does not know yet
    }
  }

  function newEpoch() {
    epoch += 1;
    seqs.reset();
  }

  // ---------------------------------------------------------------------------------------
  // the system panel, from GET /status

  let statusTimer = null;
  let statusInFlight = null;

  function pollStatus() {
    if (statusInFlight) return statusInFlight;
    clearTimeout(statusTimer);
    statusInFlight = (async () => {
      try {
        const response = await fetch(withToken('/status'), { cache: 'no-store', headers: { Accept: 'application/json' } });
        if (!response.ok) {
          showStatusError('GET /status: HTTP ' + response.status +
            (response.status === 401 ? ' — open this page with ?token=… (WS_AUTH_TOKEN)' : ''));
          return;
        }
        const status = await response.json();
        applyStatus(status && typeof status === 'object' ? status : {});
      } catch (e) {
        showStatusError('GET /status failed: ' + (e && e.message ? e.message : e));
      } finally {
        statusInFlight = null;
        statusTimer = setTimeout(pollStatus, CONFIG.statusIntervalMs);
      }
    })();
    return statusInFlight;
  }

  function showStatusError(text) {
    const box = $('status-error');
    box.textContent = text;
    box.hidden = false;
    $('system-panel').dataset.statusOk = 'false';
  }

  function obj(value) { return value && typeof value === 'object' && !Array.isArray(value) ? value : {}; }
  function list(value) { return Array.isArray(value) ? value.filter((v) => v && typeof v === 'object') : []; }

  function applyStatus(status) {
    $('status-error').hidden = true;
    const panel = $('system-panel');
    panel.dataset.statusOk = 'true';
    const service = obj(status.service);
    const port = num(service.ws_port);
    if (port !== null && port > 0) wsPort = port;
    const started = num(service.started_at);
    if (started !== null) {
      // a new service numbers its broadcasts from 1 again (started_at is computed per request:
      // it jitters by microseconds, so only a real jump counts)
      if (startedAt !== null && Math.abs(started - startedAt) > 2) {
        newEpoch();
        if (ws) dropConnection('service restarted');
      }
      startedAt = started;
    }
    $('service-meta').textContent = [service.version ? 'v' + str(service.version) : '', str(service.mode),
      service.uptime_seconds !== undefined ? 'up ' + fmtAge(service.uptime_seconds) : ''].filter(Boolean).join(' · ');
    $('status-age').textContent = 'updated ' + new Date().toLocaleTimeString([], { hour12: false });

    const ai = obj(status.ai);
    const wasEnabled = aiEnabled;
    aiEnabled = typeof ai.enabled === 'boolean' ? ai.enabled : aiEnabled;
    if (wasEnabled !== aiEnabled) renderPredictions();

    const ready = obj(status.ready);
    const hub = obj(status.hub);
    const pipeline = obj(status.pipeline);
    const storage = obj(status.storage);
    const notReady = Array.isArray(ready.not_ready) ? ready.not_ready.map(str) : [];
    const tiles = [
      ['ready', ready.ready === true ? 'ready' : (ready.ready === false ? 'not ready' : '–'),
        notReady.join(', '), ready.ready === true ? 'ok' : (ready.ready === false ? 'bad' : '')],
      ['clients', fmtInt(hub.clients), 'lagged ' + fmtInt(hub.lagged_clients_total) + ' · kicked ' +
        fmtInt(hub.kicked_clients_total)],
      ['hub seq', fmtInt(hub.seq), 'ring ' + fmtInt(hub.ring_span) + ' from ' + fmtInt(hub.oldest_seq)],
      ['trades kept', fmtInt(pipeline.trades_kept_total), 'of ' + fmtInt(pipeline.trades_received_total) + ' received'],
      ['whales', fmtInt(pipeline.whales_total), 'near settlement ' + fmtInt(pipeline.near_settlement_total)],
      ['storage', str(storage.state) || '–', 'backlog ' + fmtInt(storage.backlog_rows) + ' rows · journal ' +
        fmtInt(storage.journal_rows) + (num(storage.oldest_unwritten_age_s) ? ' · oldest ' +
        fmtAge(storage.oldest_unwritten_age_s) : ''), storage.last_error ? 'bad' : (num(storage.backlog_rows) ? 'warn' : '')],
      ['rows written', fmtInt(storage.rows_written_total), 'retries ' + fmtInt(storage.retries_total)],
      ['AI spend today', ai.enabled === false ? 'off' : fmtUsdCents(ai.spend_today_usd),
        ai.enabled === false ? 'no OPENROUTER_API_KEY' : 'budget ' + fmtUsdCents(ai.budget_usd) + ' · calls ' +
        fmtInt(ai.calls_total) + ' · failures ' + fmtInt(ai.failures_total)],
    ];
    $('sys-tiles').replaceChildren(...tiles.map(([label, value, sub, tone]) =>
      el('div', { className: 'tile ' + (tone || ''), 'data-tile': label, 'data-value': value },
        el('div', { className: 'label', text: label }),
        el('div', { className: 'value', text: value }),
        el('div', { className: 'sub', title: sub, text: sub }))));

    const replay = status.replay && typeof status.replay === 'object' ? status.replay : null;
    $('sys-replay').hidden = !replay;
    if (replay) {
      const pct = Math.max(0, Math.min(100, num(replay.percent) || 0));
      $('sys-replay-bar').style.width = pct + '%';
      $('sys-replay-text').textContent = 'replay ' + (replay.finished ? 'finished' : (replay.running ? 'running' : 'waiting')) +
        ' · ' + pct.toFixed(1) + '% · ' + fmtInt(replay.frames_total) + ' frames';
    }

    $('sys-feed-rows').replaceChildren(...list(status.feeds).map((f) =>
      el('tr', { className: f.connected ? 'ok' : 'bad', 'data-feed': str(f.name) },
        el('td', { text: str(f.name) }),
        el('td', { text: f.connected ? 'connected' : 'down' }),
        el('td', { className: 'num', text: fmtAge(f.last_frame_age_s) }),
        el('td', { className: 'num', text: fmtInt(f.frames_total) }),
        el('td', { className: 'num', text: fmtInt(f.malformed_total) }),
        el('td', { className: 'num', text: fmtInt(f.gaps_total) }))));

    const actors = list(status.actors);
    const isSession = (a) => /\/sessions\/client-/.test(str(a.path));
    const shown = actors.filter((a) => !isSession(a));
    const sessions = num(status.sessions) !== null ? num(status.sessions) : actors.length - shown.length;
    const restarts = shown.reduce((sum, a) => sum + (num(a.restarts) || 0), 0);
    $('sys-actor-summary').textContent = shown.length + ' actors · ' + fmtInt(restarts) + ' restarts · ' +
      fmtInt(sessions) + ' client sessions';
    $('sys-actor-rows').replaceChildren(...shown.map((a) => {
      const path = str(a.path).replace(/^root\//, '');
      const state = str(a.state);
      const depth = path.split('/').length - 1;
      return el('tr', { className: 'actor ' + (state === 'running' ? '' : 'warn') + (num(a.restarts) ? ' restarted' : ''),
                        'data-path': str(a.path), 'data-restarts': str(num(a.restarts) || 0) },
        el('td', { className: 'path', style: 'padding-left:' + (0.3 + depth * 0.9) + 'em',
                   text: path.split('/').pop() + (a.kind === 'supervisor' ? '/' : '') }),
        el('td', { text: state }),
        el('td', { className: 'num', text: fmtInt(a.restarts) }),
        el('td', { className: 'err', title: str(a.last_error), text: str(a.last_error) }));
    }));
  }

  function fmtUsdCents(value) {
    const n = num(value);
    return n === null ? '–' : '$' + n.toFixed(2);
  }

  // ---------------------------------------------------------------------------------------

  renderPredictions();
  renderMarkets();
  connect();
})();
