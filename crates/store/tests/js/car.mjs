// CAR v1 with independent tools (@ipld/car@5 + ipfs-unixfs-importer/-exporter).
// usage:
//   node car.mjs unpack IN.car OUT   verify every block, export the root UnixFS file to OUT,
//                                    print the roots and the block count
//   node car.mjs pack IN OUT.car     import IN as `ipfs add --cid-version=1` and write a
//                                    CAR v1 with @ipld/car's CarWriter; print the root
import { createReadStream, createWriteStream } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { CarReader, CarWriter } from '@ipld/car'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { exporter } from 'ipfs-unixfs-exporter'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'multiformats/bytes'

const [cmd, input, output] = process.argv.slice(2)

if (cmd === 'unpack') {
  const reader = await CarReader.fromBytes(await readFile(input))
  const roots = await reader.getRoots()
  const store = new MemoryBlockstore()
  let count = 0
  for await (const { cid, bytes } of reader.blocks()) {
    const digest = await sha256.digest(bytes)
    if (!equals(digest.bytes, cid.multihash.bytes)) {
      throw new Error(`block ${cid} does not match its hash`)
    }
    await store.put(cid, bytes)
    count++
  }
  const entry = await exporter(roots[0], store)
  const chunks = []
  for await (const chunk of entry.content()) chunks.push(chunk)
  await writeFile(output, Buffer.concat(chunks))
  console.log(JSON.stringify({ roots: roots.map(String), blocks: count }))
} else if (cmd === 'pack') {
  // Record blocks as the importer writes them (getAll of blockstore-core forgets codecs).
  const blocks = []
  const store = {
    put: async (cid, bytes) => {
      blocks.push({ cid, bytes })
      return cid
    },
    has: async () => false
  }
  let root
  for await (const entry of importer([{ content: createReadStream(input) }], store, {
    cidVersion: 1,
    rawLeaves: true,
    chunker: fixedSize({ chunkSize: 262144 }),
    layout: balanced({ maxChildrenPerNode: 174 })
  })) {
    root = entry.cid
  }
  const { writer, out } = CarWriter.create([root])
  const done = new Promise((resolve, reject) => {
    Readable.from(out).pipe(createWriteStream(output)).on('finish', resolve).on('error', reject)
  })
  // Root first, as `ipfs dag export` would; the rest in write order.
  blocks.reverse()
  for (const block of blocks) {
    await writer.put(block)
  }
  await writer.close()
  await done
  console.log(root.toString())
} else {
  console.error('usage: node car.mjs unpack IN.car OUT | pack IN OUT.car')
  process.exit(2)
}
