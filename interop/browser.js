'use strict';
// Headless Chromium (Debian's, driven by playwright-core) against getty.
//
//   node browser.js echo URL   open the echo page, wait for its verdict
//   node browser.js chat URL   two chat pages talk; a Go client joins in
//
// CHROMIUM names the browser (default /usr/bin/chromium); SCREENSHOT_DIR,
// when set, receives a PNG of each page at the end. Every wait is bounded,
// and the process exits 0 only when every check passed.

const { chromium } = require('playwright-core');
const path = require('path');

const [mode, url] = process.argv.slice(2);
const STEP = 20000;

async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    timeout: 60000,
    // The flags this machine's Chromium needs: no sandbox as root, and no
    // background connections to the (closed) outside network.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

function watch(page, label) {
  page.on('console', (m) => console.log(`  [${label} console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`  [${label} page error] ${e.message}`));
}

async function screenshot(page, name) {
  if (process.env.SCREENSHOT_DIR) {
    await page.screenshot({ path: path.join(process.env.SCREENSHOT_DIR, `${name}.png`) });
  }
}

// The echo page (pages/echo.html) runs its checks by itself and sets
// document.title to PASS or "FAIL: why"; #log has the details.
async function echo(browser) {
  const page = await browser.newPage();
  watch(page, 'echo');
  await page.goto(url, { timeout: STEP });
  await page.waitForFunction(() => /^(PASS|FAIL)/.test(document.title), null, { timeout: 90000 });
  const title = await page.title();
  console.log((await page.textContent('#log')).trim().split('\n').map((l) => '  ' + l).join('\n'));
  await screenshot(page, 'echo');
  console.log(title);
  return title === 'PASS';
}

// The chat page, used as a person would: type a name, type a message, press
// Enter, read the list.
async function chat(browser) {
  const join = async (name) => {
    const page = await browser.newPage({ viewport: { width: 720, height: 420 } });
    watch(page, name);
    await page.goto(url, { timeout: STEP });
    await page.waitForSelector('#status.connected', { timeout: STEP });
    await page.fill('#name', name);
    return page;
  };
  const say = async (page, text) => {
    await page.fill('#text', text);
    await page.press('#text', 'Enter');
  };
  const sees = (page, who, text) => page.waitForFunction(([who, text]) => [...document.querySelectorAll('#messages li')]
    .some((li) => li.querySelector('.name')?.textContent === who + ':' && li.lastChild.textContent === text), [who, text], { timeout: STEP });

  const alice = await join('alice');
  const bob = await join('bob');
  await say(alice, 'hi from alice');
  await Promise.all([sees(alice, 'alice', 'hi from alice'), sees(bob, 'alice', 'hi from alice')]);
  console.log('  bob (and alice) see alice\'s message');
  await say(bob, 'hi <b>alice</b> & co');
  await Promise.all([sees(alice, 'bob', 'hi <b>alice</b> & co'), sees(bob, 'bob', 'hi <b>alice</b> & co')]);
  if (await alice.$('#messages b')) throw new Error('a message was rendered as HTML');
  console.log('  alice (and bob) see bob\'s message, as text');
  if ((await bob.inputValue('#text')) !== '') throw new Error('the input was not cleared after sending');

  // Now the Go side sends as "getty" (it waits for this line).
  console.log('READY');
  await Promise.all([sees(alice, 'getty', 'hello from a getty client'), sees(bob, 'getty', 'hello from a getty client')]);
  console.log('  both pages see the getty client\'s message');
  await screenshot(alice, 'chat-alice');
  await screenshot(bob, 'chat-bob');

  // The Go side shuts the chat down: the pages notice.
  console.log('STOP');
  await Promise.all([alice, bob].map((p) => p.waitForFunction(
    () => /^disconnected \((1000|1001)\)/.test(document.querySelector('#status').textContent), null, { timeout: STEP })));
  console.log(`  both pages show a clean close after the shutdown: ${await alice.textContent('#status')}`);
  return true;
}

(async () => {
  if (!url || !{ echo, chat }[mode]) {
    console.error('usage: node browser.js echo|chat URL');
    process.exit(2);
  }
  const browser = await launch();
  console.log(`  chromium ${browser.version()}`);
  let ok = false;
  try {
    ok = await { echo, chat }[mode](browser);
  } catch (err) {
    console.log(`FAIL ${mode}: ${err.message.split('\n')[0]}`);
  } finally {
    await browser.close().catch(() => {});
  }
  console.log(ok ? `ok ${mode}` : `FAIL ${mode}`);
  process.exit(ok ? 0 : 1);
})().catch((err) => { console.log(`FAIL ${mode}: ${err.message}`); process.exit(1); });
