// A V8 CPU profile of a running `wrangler dev` worker, over the Chrome DevTools Protocol of
// its inspector (`wrangler dev --inspector-port <port>`), and a summary of where the time went.
//
//   node tests/bench/profile.mjs --port <inspector port> --seconds 8 [--out x.cpuprofile] [--top 25]
//
// Starts the profiler, waits (drive load meanwhile, e.g. with wrk), stops it, writes the
// profile (open it in Chrome DevTools' Performance panel or speedscope) and prints the top
// functions by self time, plus the split between wasm, JavaScript, the runtime's own work
// (`(program)`, GC) and idle. `make bench` runs it around one load run when BENCH_PROFILE is
// set (see tests/bench/bench.py). For names in the wasm frames, build with
// `CARGO_PROFILE_RELEASE_STRIP=none`.
import { writeFileSync } from "node:fs";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => {
    if (a.startsWith("--")) pairs.push([a.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);
const port = Number(args.port);
const seconds = Number(args.seconds ?? 8);
const top = Number(args.top ?? 25);
const interval = Number(args.interval ?? 100); // µs between samples
if (!port) {
  console.error("usage: profile.mjs --port <inspector port> [--seconds 8] [--out file] [--top 25]");
  process.exit(2);
}

// Node 22 has a global WebSocket; Node 20 gets wrangler's `ws` dependency.
const WebSocketImpl = globalThis.WebSocket ?? (await import("ws")).default;

async function target() {
  const list = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  // The worker's own isolate (wrangler lists the user worker; skip its internal ones).
  const t = list.find((x) => x.webSocketDebuggerUrl && !/wrangler|internal/i.test(x.title ?? "")) ?? list[0];
  if (!t) throw new Error(`no inspector target on port ${port}`);
  return t.webSocketDebuggerUrl ?? `ws://127.0.0.1:${port}/${t.id}`;
}

function connect(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocketImpl(url);
    let next = 1;
    const waiting = new Map();
    ws.addEventListener("message", (ev) => {
      const msg = JSON.parse(typeof ev.data === "string" ? ev.data : ev.data.toString());
      const w = msg.id && waiting.get(msg.id);
      if (!w) return;
      waiting.delete(msg.id);
      msg.error ? w.reject(new Error(JSON.stringify(msg.error))) : w.resolve(msg.result);
    });
    ws.addEventListener("error", (e) => reject(e.error ?? new Error("websocket error")));
    ws.addEventListener("open", () =>
      resolve({
        send(method, params = {}) {
          const id = next++;
          ws.send(JSON.stringify({ id, method, params }));
          return new Promise((res, rej) => waiting.set(id, { resolve: res, reject: rej }));
        },
        close: () => ws.close(),
      }),
    );
  });
}

/** Self time per function, from the samples and their time deltas (µs). */
export function summarize(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0;
    total += dt;
    const f = byId.get(id).callFrame;
    const where = f.url ? `${f.url.split("/").pop()}:${f.lineNumber + 1}` : "";
    const key = `${f.functionName || "(anonymous)"}${where ? `  ${where}` : ""}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  const kinds = { idle: 0, program: 0, gc: 0, wasm: 0, js: 0 };
  for (const [key, us] of self) {
    if (key.startsWith("(idle)")) kinds.idle += us;
    else if (key.startsWith("(program)")) kinds.program += us;
    else if (key.startsWith("(garbage collector)")) kinds.gc += us;
    else if (/wasm|\.wasm|\$func|index_bg/.test(key)) kinds.wasm += us;
    else kinds.js += us;
  }
  const busy = total - kinds.idle;
  const rows = [...self].filter(([k]) => !k.startsWith("(idle)")).sort((a, b) => b[1] - a[1]);
  return { total, busy, kinds, rows };
}

async function main() {
  const session = await connect(await target());
  await session.send("Profiler.enable");
  await session.send("Profiler.setSamplingInterval", { interval });
  await session.send("Profiler.start");
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const { profile } = await session.send("Profiler.stop");
  session.close();
  if (args.out) writeFileSync(args.out, JSON.stringify(profile));
  const { busy, kinds, rows } = summarize(profile);
  const pct = (us) => `${((100 * us) / (busy || 1)).toFixed(1).padStart(5)}%`;
  console.log(`busy ${(busy / 1000).toFixed(0)} ms of ${seconds * 1000} ms sampled; ` +
    `wasm ${pct(kinds.wasm)}, js ${pct(kinds.js)}, (program) ${pct(kinds.program)}, gc ${pct(kinds.gc)}`);
  for (const [key, us] of rows.slice(0, top)) {
    console.log(`${pct(us)}  ${(us / 1000).toFixed(1).padStart(8)} ms  ${key}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    console.error(`profile: ${e.stack ?? e}`);
    process.exit(1);
  });
}
