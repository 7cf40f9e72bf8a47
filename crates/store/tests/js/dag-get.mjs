// `ipfs dag get` with the IPLD codecs js-ipfs and Helia use (@ipld/dag-cbor, @ipld/dag-json),
// over the blocks of a CAR v1 file.
// usage: node dag-get.mjs IN.car CID
// Checks every block of the CAR against its CID, decodes block CID as DAG-CBOR, re-encodes
// it (fails unless that gives the very same bytes: the block is canonical DAG-CBOR) and
// prints it as DAG-JSON, as `ipfs dag get` does.
import { readFile } from 'node:fs/promises'
import { CarReader } from '@ipld/car'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'multiformats/bytes'

const [input, want] = process.argv.slice(2)
const reader = await CarReader.fromBytes(await readFile(input))
let found
for await (const { cid, bytes } of reader.blocks()) {
  const digest = await sha256.digest(bytes)
  if (!equals(digest.bytes, cid.multihash.bytes)) {
    throw new Error(`block ${cid} does not match its hash`)
  }
  if (cid.equals(CID.parse(want))) found = bytes
}
if (!found) throw new Error(`${want} is not in the CAR`)
if (CID.parse(want).code !== dagCbor.code) throw new Error(`${want} is not a dag-cbor CID`)
const value = dagCbor.decode(found)
if (!equals(dagCbor.encode(value), found)) {
  throw new Error('re-encoding the block gives other bytes: not canonical DAG-CBOR')
}
process.stdout.write(new TextDecoder().decode(dagJson.encode(value)))
