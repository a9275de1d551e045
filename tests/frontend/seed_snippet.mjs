// The seed README's frontend snippet, unchanged but for the URL (argv) and the exit once
// both message kinds have arrived. Run: node --experimental-websocket seed_snippet.mjs ws://host:port
const ws = new WebSocket(process.argv[2] ?? 'ws://localhost:8765');
const seen = { whale_trade: 0, market_update: 0 };

ws.onmessage = (event) => {
  const message = JSON.parse(event.data);

  switch (message.type) {
    case 'whale_trade':
      console.log('大額交易:', JSON.stringify(message.data));
      seen.whale_trade++;
      break;
    case 'market_update':
      console.log('市場更新:', JSON.stringify(message.data));
      seen.market_update++;
      break;
  }
  if (seen.whale_trade >= 2 && seen.market_update >= 2) { ws.close(); process.exit(0); }
};
setTimeout(() => { console.error('timed out', JSON.stringify(seen)); process.exit(1); }, 30000);
