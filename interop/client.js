'use strict';
// The ws package as a client of a getty WebSocket echo server.
//
//   node client.js ws://127.0.0.1:PORT/echo [scenario...]
//
// The server (interop_test.go) frames every package with getty's
// LengthFieldCodec (a 4-byte big-endian length, then the payload), echoes
// each package, and understands two commands: "cmd:compress" (turn on
// per-message deflate for its replies, answer "ok") and "cmd:close"
// (Session.Close). Each scenario prints "ok <name>" or "FAIL <name>: why";
// the exit code is 0 only when all passed. Every wait is bounded.

const { WebSocket } = require('ws');
const crypto = require('crypto');

const url = process.argv[2];
const MAX = Number(process.env.INTEROP_MAX_MSG || 131072); // the server's SetMaxMsgLen
const STEP_TIMEOUT = 15000;

function frame(payload) {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const h = Buffer.alloc(4);
  h.writeUInt32BE(p.length);
  return Buffer.concat([h, p]);
}

// A deterministic generator, so a failure can be replayed.
function prng(seed) {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
}

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

// open connects and queues every message and the close event, so a
// scenario can await them in order.
function open(options = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
    const inbox = [];
    const waiters = [];
    let closed = null;
    const deliver = () => {
      while (waiters.length && (inbox.length || closed)) {
        const w = waiters.shift();
        if (inbox.length) w.resolve(inbox.shift());
        else w.reject(new Error(`connection closed (${closed.code}) while waiting for a message`));
      }
    };
    ws.on('message', (data, isBinary) => { inbox.push({ data, isBinary }); deliver(); });
    let closeResolve;
    const closedP = new Promise((r) => { closeResolve = r; });
    ws.on('close', (code, reason) => { closed = { code, reason: reason.toString() }; closeResolve(closed); deliver(); });
    ws.on('error', (err) => { if (ws.readyState === WebSocket.CONNECTING) reject(err); });
    ws.on('open', () => resolve({
      ws,
      next: (what = 'a message') => withTimeout(new Promise((res, rej) => { waiters.push({ resolve: res, reject: rej }); deliver(); }), STEP_TIMEOUT, what),
      closed: (what = 'the close') => withTimeout(closedP, STEP_TIMEOUT, what),
      send: (data, opts = {}) => new Promise((res, rej) => ws.send(data, opts, (err) => (err ? rej(err) : res()))),
    }));
  }), STEP_TIMEOUT, `connecting to ${url}`);
}

function expectEqual(got, want, what) {
  if (!Buffer.from(got).equals(Buffer.from(want))) {
    throw new Error(`${what}: got ${got.length} bytes, want ${want.length} (first difference at byte ${firstDiff(got, want)})`);
  }
}

function firstDiff(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

const scenarios = {
  // Binary packages of many sizes, pipelined, then text messages (the
  // header of a short package is valid UTF-8), a fragmented message and a
  // ping; every echo byte for byte, in order. Then an orderly close.
  async echo() {
    const c = await open();
    const rnd = prng(20240601);
    const sizes = [0, 1, 2, 121, 122, 123, 124, 125, 126, 127, 65531, 65532, 65535, 65536, MAX - 4];
    while (sizes.length < 200) sizes.push(rnd() % 40000);
    const sent = sizes.map((n) => frame(crypto.randomBytes(n)));
    for (const f of sent) await c.send(f, { binary: true });
    for (let i = 0; i < sent.length; i++) {
      const m = await c.next(`echo ${i}`);
      if (!m.isBinary) throw new Error(`echo ${i} is a text message`);
      expectEqual(m.data, sent[i], `echo ${i} (${sizes[i]} bytes)`);
    }

    const texts = ['hello', 'héllo wörld ✓', '日本語のテキスト', '🙂 emoji', 'x'.repeat(100)];
    for (const t of texts) await c.send(frame(t).toString('utf8'), { binary: false });
    for (const t of texts) {
      const m = await c.next(`echo of text ${JSON.stringify(t)}`);
      expectEqual(m.data, frame(t), `echo of text ${JSON.stringify(t)}`);
      if (!m.isBinary) throw new Error('getty answers with binary messages');
    }

    const whole = frame(crypto.randomBytes(3000));
    await c.send(whole.subarray(0, 3), { binary: true, fin: false });
    await c.send(whole.subarray(3, 1000), { binary: true, fin: false });
    await c.send(whole.subarray(1000), { binary: true, fin: true });
    expectEqual((await c.next('echo of the fragmented message')).data, whole, 'fragmented message');

    const pong = withTimeout(new Promise((r) => c.ws.once('pong', r)), STEP_TIMEOUT, 'pong');
    c.ws.ping(Buffer.from('are you there'));
    const data = await pong;
    if (data.toString() !== 'are you there') throw new Error(`pong carries ${JSON.stringify(data.toString())}`);

    c.ws.close(1000, 'done');
    const { code } = await c.closed();
    if (code !== 1000) throw new Error(`close code ${code}, want 1000`);
  },

  // permessage-deflate: negotiated when ws offers it, our compressed sends
  // inflate on the server, and after cmd:compress the server's replies
  // arrive compressed (far fewer bytes on the socket than the payloads).
  async deflate() {
    const c = await open({ perMessageDeflate: { threshold: 0 } });
    const ext = c.ws.extensions;
    if (!/permessage-deflate/.test(ext)) throw new Error(`permessage-deflate not negotiated (extensions ${JSON.stringify(ext)})`);
    await c.send(frame('cmd:compress'), { binary: true });
    expectEqual((await c.next('the answer to cmd:compress')).data, frame('ok'), 'answer to cmd:compress');

    const before = c.ws._socket.bytesRead;
    let total = 0;
    for (let i = 0; i < 20; i++) {
      const p = frame(`compressible line ${i} `.repeat(3000).slice(0, MAX - 4));
      total += p.length;
      await c.send(p, { binary: true, compress: true });
      expectEqual((await c.next(`compressed echo ${i}`)).data, p, `compressed echo ${i}`);
    }
    const onWire = c.ws._socket.bytesRead - before;
    if (onWire * 4 > total) throw new Error(`replies not compressed: ${onWire} bytes on the socket for ${total} bytes of payload`);
    console.log(`  deflate: ${total} bytes echoed, ${onWire} bytes on the wire from the server`);
    c.ws.close(1000);
    await c.closed();
  },

  // A message over the server's max message length: close code 1009.
  async toolong() {
    const c = await open();
    await c.send(frame(crypto.randomBytes(MAX)), { binary: true }); // MAX+4 bytes on the wire
    const { code } = await c.closed();
    if (code !== 1009) throw new Error(`close code ${code}, want 1009 (message too big)`);
  },

  // A message the codec cannot decode (shorter than its header): 1007.
  async badframe() {
    const c = await open();
    await c.send(Buffer.from([0, 0]), { binary: true });
    const { code } = await c.closed();
    if (code !== 1007) throw new Error(`close code ${code}, want 1007 (invalid payload)`);
  },

  // The server closes the session (Session.Close): ws sees a clean 1000.
  async serverclose() {
    const c = await open();
    await c.send(frame('cmd:close'), { binary: true });
    const { code } = await c.closed();
    if (code !== 1000) throw new Error(`close code ${code}, want 1000`);
  },

  // Held open until the Go side shuts the server down: prints READY, then
  // expects a close frame (1000 or 1001), not a dropped connection (1006).
  async shutdown() {
    const c = await open();
    await c.send(frame('still here'), { binary: true });
    expectEqual((await c.next()).data, frame('still here'), 'echo before shutdown');
    console.log('READY');
    const { code } = await c.closed('the server to shut down');
    if (code !== 1000 && code !== 1001) throw new Error(`close code ${code}, want 1000 or 1001`);
    console.log(`  shutdown: close code ${code}`);
  },
};

(async () => {
  const names = process.argv.slice(3);
  if (!url || names.some((n) => !scenarios[n])) {
    console.error(`usage: node client.js URL [${Object.keys(scenarios).join('|')}]...`);
    process.exit(2);
  }
  let failed = 0;
  for (const name of names.length ? names : ['echo', 'deflate', 'toolong', 'badframe', 'serverclose']) {
    try {
      await scenarios[name]();
      console.log(`ok ${name}`);
    } catch (err) {
      failed++;
      console.log(`FAIL ${name}: ${err.message}`);
    }
  }
  process.exit(failed ? 1 : 0);
})();
