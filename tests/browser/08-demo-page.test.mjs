// 8. The demo page (GET /) renders against --demo: state open, heartbeat RTT, a ticker that
// advances, the server's counters; its Drop button brings the connection back, resumed.
// Screenshots are kept in tests/browser/artifacts/ (gitignored); their paths are printed.
import test from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { SKIP, session, waitIn, artifactsDir } from "./harness.mjs";

test("demo page renders and its ticker advances with --demo", { skip: SKIP, timeout: 60000 }, async (t) => {
  const s = session(t);
  const srv = await s.server({ args: ["--demo"] });
  const browser = await s.browser();
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`console.error: ${m.text()}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
  const outside = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(srv.url) && !r.url().startsWith(`ws://127.0.0.1:${srv.port}`) && !r.url().startsWith("data:"))
      outside.push(r.url());
  });

  const res = await page.goto(`${srv.url}/`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()["content-type"], /text\/html/);
  assert.equal(await page.title(), "tickwire · live demo");

  await waitIn(page, "state open", () => document.querySelector("#state").textContent === "open");
  await waitIn(page, "ten ticker rows with a seq", () =>
    [...document.querySelectorAll("#ticks tbody tr")].filter((tr) => /\d/.test(tr.querySelector(".seq").textContent)).length >= 10, null, 10000);
  const readSeqs = () => page.evaluate(() => Object.fromEntries([...document.querySelectorAll("#ticks tbody tr")]
    .map((tr) => [tr.dataset.topic, Number(tr.querySelector(".seq").textContent.replace(/,/g, "")) || 0])));
  const before = await readSeqs();
  await waitIn(page, "the heartbeat RTT shown", () => /^\d+(\.\d+)?$/.test(document.querySelector("#rtt").textContent), null, 8000);
  await waitIn(page, "the server's connection counter", () => /^\d+$/.test(document.querySelector("#m-conns").textContent.replace(/,/g, "")), null, 5000);
  await waitIn(page, "a published/s rate", () => /^\d/.test(document.querySelector("#m-pub-rate").textContent), null, 5000);
  const after = await readSeqs();
  const advanced = Object.keys(before).filter((k) => after[k] > before[k]);
  assert.ok(advanced.length >= 5, `the ticker advances: ${advanced.length} of ${Object.keys(before).length} rows moved`);
  const shot = path.join(artifactsDir(), "demo.png");
  await page.screenshot({ path: shot, fullPage: true });
  t.diagnostic(`screenshot: ${shot}`);

  // Publish a note: acked with its seq.
  await page.fill("#pub-text", "hello");
  await page.click("#pub-form button");
  await waitIn(page, "the note acked", () => /^seq 1\b/.test(document.querySelector("#pubs li .st").textContent), null, 5000);

  // Drop: the page goes reconnecting and comes back open, every row resumed (recovered);
  // a note published meanwhile waits in the offline queue, then is acked.
  // The reconnecting state can be shorter than one poll (full jitter may pick ~0 ms), so
  // wait for the line the page logs on entering it, not for the state to be on screen.
  const attempts = (n) => [...document.querySelectorAll("#log li")].filter((li) => /; attempt \S+ in /.test(li.textContent)).length > n;
  const attemptsBefore = await page.evaluate(() => [...document.querySelectorAll("#log li")].filter((li) => /; attempt \S+ in /.test(li.textContent)).length);
  await page.click("#drop");
  await waitIn(page, "reconnecting after Drop", attempts, attemptsBefore, 3000);
  // Publish in the same task that reads the state (the page writes the note's status
  // synchronously), so "offline" is a fact, not a race with the jittered reconnect.
  const offline = await page.evaluate(() => {
    const state = document.querySelector("#state").textContent;
    document.querySelector("#pub-text").value = "while offline";
    document.querySelector("#pub-form").requestSubmit();
    return { state, st: document.querySelector("#pubs li .st").textContent };
  });
  const shotDown = path.join(artifactsDir(), "demo-reconnecting.png");
  await page.screenshot({ path: shotDown, fullPage: true });
  await waitIn(page, "open again", () => document.querySelector("#state").textContent === "open", null, 10000);
  await waitIn(page, "every row recovered once", () =>
    [...document.querySelectorAll("#ticks tbody tr")].every((tr) => /^[1-9]/.test(tr.querySelector(".rec").textContent)), null, 10000);
  await waitIn(page, "the offline note acked", () => /^seq 2\b/.test(document.querySelector("#pubs li .st").textContent), null, 5000);
  if (offline.state !== "open") assert.match(offline.st, /queued/, `the offline note showed as queued (state ${offline.state})`);
  else t.diagnostic("the page was open again before the note: the offline queue is not shown by this run");
  const gaps = await page.evaluate(() => [...document.querySelectorAll("#ticks tbody .gaps")].map((td) => td.textContent));
  assert.ok(gaps.every((g) => g === "0"), `no gap after a drop with the server alive: ${gaps}`);
  await waitIn(page, "the resume in the log", () => [...document.querySelectorAll("#log li")].some((li) => /recovered with since/.test(li.textContent)), null, 3000);
  const log = await page.evaluate(() => [...document.querySelectorAll("#log li")].map((li) => li.textContent));
  assert.ok(log.some((l) => /1006/.test(l)), `the log tells the 1006: ${log.join(" | ")}`);
  assert.ok(log.some((l) => /recovered with since/.test(l)), `the log tells the resume: ${log.join(" | ")}`);
  const shotBack = path.join(artifactsDir(), "demo-resumed.png");
  await page.screenshot({ path: shotBack, fullPage: true });
  t.diagnostic(`screenshots after Drop: ${shotDown}, ${shotBack}`);

  assert.deepEqual(outside, [], "nothing loaded from outside the server");
  assert.deepEqual(problems, [], "no page errors");
});
