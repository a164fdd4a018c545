'use strict';
// The ws package as a WebSocket echo server for getty's WebSocket client.
//
//   node server.js [--deflate]
//
// Listens on 127.0.0.1 on a free port and prints "LISTENING <port>". Every
// message is echoed as it came (binary as binary, text as text), except
// packages (4-byte big-endian length, then the payload, as getty's
// LengthFieldCodec) whose payload is a command:
//   cmd:stats        reply with a package holding JSON about this connection
//   cmd:text:<s>     reply with <s>, framed, as a text message
//   cmd:close:<code> close the connection with that code
// Each connection is pinged once when it opens; the pong is counted. With
// --deflate, permessage-deflate is offered (ws's defaults: replies of 1 KiB
// or more are compressed). The process ends when its standard input closes
// (the Go test holds it) or after 5 minutes at most.

const { WebSocketServer } = require('ws');

const deflate = process.argv.includes('--deflate');
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate, maxPayload: 1 << 20 });

function frame(s) {
  const p = Buffer.from(s);
  const h = Buffer.alloc(4);
  h.writeUInt32BE(p.length);
  return Buffer.concat([h, p]);
}

wss.on('connection', (ws, req) => {
  const st = { messages: 0, text: 0, pongs: 0, extensions: ws.extensions, bytesRead: 0 };
  ws.on('pong', () => { st.pongs++; });
  ws.ping('hello getty');
  ws.on('message', (data, isBinary) => {
    st.messages++;
    if (!isBinary) st.text++;
    const payload = data.length >= 4 && data.readUInt32BE(0) === data.length - 4 ? data.subarray(4).toString('latin1') : '';
    if (payload === 'cmd:stats') {
      st.bytesRead = req.socket.bytesRead;
      ws.send(frame(JSON.stringify(st)), { binary: true });
    } else if (payload.startsWith('cmd:text:')) {
      ws.send(frame(Buffer.from(payload.slice(9), 'latin1')).toString('utf8'), { binary: false });
    } else if (payload.startsWith('cmd:close:')) {
      ws.close(Number(payload.slice(10)), 'bye from ws');
    } else {
      ws.send(data, { binary: isBinary });
    }
  });
  ws.on('error', (err) => console.error('connection error:', err.message));
});

wss.on('listening', () => console.log(`LISTENING ${wss.address().port}`));

function stop() {
  for (const ws of wss.clients) ws.terminate();
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
setTimeout(() => { console.error('server.js: 5 minutes up'); stop(); }, 300000).unref();
