// Independent UnixFS importer (ipfs-unixfs-importer@17): prints the root CID of each file.
// usage: node unixfs-cid.mjs <v0|v1|v1_2025|v1:CHUNK> FILE...
// (v1:CHUNK: `ipfs add --cid-version=1 --chunker=size-CHUNK`)
import { createReadStream } from 'node:fs'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { MemoryBlockstore } from 'blockstore-core/memory'

const [profile, ...files] = process.argv.slice(2)
const options = {
  // `ipfs add --cid-version=1`
  v1: {
    cidVersion: 1,
    rawLeaves: true,
    chunker: fixedSize({ chunkSize: 262144 }),
    layout: balanced({ maxChildrenPerNode: 174 })
  },
  // `ipfs add` (Kubo's unixfs-v0-2015 default)
  v0: { profile: 'unixfs-v0-2015' },
  // IPIP-499
  v1_2025: { profile: 'unixfs-v1-2025' }
}[profile] ?? (/^v1:\d+$/.test(profile ?? '')
  ? {
      cidVersion: 1,
      rawLeaves: true,
      chunker: fixedSize({ chunkSize: Number(profile.slice(3)) }),
      layout: balanced({ maxChildrenPerNode: 174 })
    }
  : undefined)
if (options === undefined || files.length === 0) {
  console.error('usage: node unixfs-cid.mjs <v0|v1|v1_2025|v1:CHUNK> FILE...')
  process.exit(2)
}
for (const file of files) {
  let root
  for await (const entry of importer([{ content: createReadStream(file) }], new MemoryBlockstore(), options)) {
    root = entry.cid
  }
  console.log(root.toString())
}
