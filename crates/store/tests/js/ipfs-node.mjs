// A real IPFS node with a Kubo-style RPC API, for the KuboStore tests: js-ipfs in process
// (ipfs-core + ipfs-http-server), offline, no bootstrap peers, no swarm listeners, API on
// 127.0.0.1 with a free port, repo in the given (temporary) directory.
// usage: node ipfs-node.mjs REPO_DIR
// Prints `API http://127.0.0.1:PORT` once ready; runs until killed or stdin closes.
// Newer hoisted helpers (it-queue) call Promise.withResolvers, which Node 20 lacks.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function () {
    let resolve, reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
const { create } = await import('ipfs-core')
const { HttpApi } = await import('ipfs-http-server')


const repo = process.argv[2]
if (!repo) {
  console.error('usage: node ipfs-node.mjs REPO_DIR')
  process.exit(2)
}
const ipfs = await create({
  repo,
  offline: true,
  start: true,
  silent: true,
  init: { emptyRepo: true },
  preload: { enabled: false },
  config: {
    Bootstrap: [],
    Addresses: { Swarm: [], API: '/ip4/127.0.0.1/tcp/0', Gateway: '', RPC: '', Delegates: [] },
    Discovery: { MDNS: { Enabled: false }, webRTCStar: { Enabled: false } }
  }
})
const api = new HttpApi(ipfs)
await api.start()
const port = api.apiAddr.toOptions().port
console.log(`API http://127.0.0.1:${port}`)

const stop = async () => {
  try {
    await api.stop()
    await ipfs.stop()
  } finally {
    process.exit(0)
  }
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
// The test holds our stdin: when it goes away, so do we (no orphaned nodes).
process.stdin.on('end', stop)
process.stdin.resume()
