'use strict';
// ws-server.js — the reference for the chat fan-out benchmark: a chat broadcast server
// on Node's `ws` package (version pinned in package-lock.json), written the way its
// README broadcasts, with the usual optimisations a careful author would add:
//   - the outgoing frame is serialised once and sent as one Buffer to every client
//     (ws would otherwise convert a string per client);
//   - no permessage-deflate (ws's server default), 4 KB max payload like lucarne;
//   - it gives each message a seq and a server timestamp, as lucarne does.
// It does less than lucarne (no names, limits, history, persistence or moderation).
//
// Usage: node ws-server.js            (prints "ws-server listening on PORT")
//        PORT=9000 node ws-server.js

const { WebSocketServer, WebSocket } = require('ws');

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(process.env.PORT || 0),
  maxPayload: 4096,
  clientTracking: true,
});

let seq = 0;

wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (_) {
      return;
    }
    if (!msg || msg.type !== 'chat' || typeof msg.text !== 'string') return;
    seq += 1;
    const frame = Buffer.from(JSON.stringify({
      type: 'chat',
      seq,
      text: msg.text,
      clientId: msg.clientId,
      ts: Date.now(),
    }));
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(frame, { binary: false });
    }
  });
});

wss.on('listening', () => {
  console.log(`ws-server listening on ${wss.address().port}`);
});
