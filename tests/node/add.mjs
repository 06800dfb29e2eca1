// What the real JavaScript client (kubo-rpc-client) reports for a set of
// adds against one RPC endpoint, as JSON on stdout. tests/e2e/tests/client.rs
// runs it against Kubo and against cluster+filter and compares.
//
//   node add.mjs http://127.0.0.1:PORT
import { create } from 'kubo-rpc-client'

const client = create({ url: process.argv[2] })

/** Deterministic content (the same on every run). */
function bytes (len, seed) {
  const out = new Uint8Array(len)
  let x = seed >>> 0 || 1
  for (let i = 0; i < len; i++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

/** The fields a program reads from an added entry. */
function entry (e) {
  return { path: e.path, cid: e.cid.toString(), size: e.size, mode: e.mode ?? null, mtime: e.mtime ?? null }
}

const report = {}
/** Runs one step; a client error is part of the report, not a crash. */
async function step (name, fn) {
  try {
    report[name] = await fn()
  } catch (e) {
    report[name] = { error: String(e.message) }
  }
}
const big = bytes(1_300_000, 7)

// `add` of bare content: kubo-rpc-client sends filename="" (add-compat rows 1, 3, 4).
let progress = []
await step('unnamed', async () => entry(await client.add(big, { progress: (b, p) => progress.push([b, p ?? null]) })))
report.unnamedProgress = progress

progress = []
await step('named', async () => entry(await client.add({ path: 'hello.txt', content: big.slice(0, 5000) }, { progress: (b, p) => progress.push([b, p ?? null]) })))
report.namedProgress = progress

await step('empty', async () => entry(await client.add(new Uint8Array(0), { cidVersion: 1 })))
await step('cidv1', async () => entry(await client.add(big, { cidVersion: 1 })))
await step('rawLeaves', async () => entry(await client.add(big, { rawLeaves: true, chunker: 'size-65536' })))
await step('wrapped', async () => entry(await client.add(bytes(10, 3), { wrapWithDirectory: true })))

// `addAll` of a directory tree, wrapped and not, with progress.
const tree = () => [
  { path: 'site/index.html', content: bytes(3000, 1) },
  { path: 'site/img/a.bin', content: bytes(600_000, 2) },
  { path: 'site/img/b.bin', content: bytes(10, 4) }
]
for (const wrapWithDirectory of [false, true]) {
  progress = []
  await step(`tree${wrapWithDirectory ? 'Wrapped' : ''}`, async () => {
    const all = []
    for await (const e of client.addAll(tree(), { wrapWithDirectory, progress: (b, p) => progress.push([b, p ?? null]) })) all.push(entry(e))
    return all
  })
  report[`tree${wrapWithDirectory ? 'Wrapped' : ''}Progress`] = progress
}

// only-hash through cluster+filter must be Kubo's own answer.
await step('onlyHash', async () => entry(await client.add(bytes(2000, 9), { onlyHash: true })))

// An error Kubo reports before its first event.
await step('error', async () => entry(await client.add(big, { chunker: 'size-0' })))

process.stdout.write(JSON.stringify(report, null, 1) + '\n')
