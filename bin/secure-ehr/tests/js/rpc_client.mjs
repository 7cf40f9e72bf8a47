// An independent Ethereum client (viem) against `secure-ehr serve --rpc`: chain id, block
// number, `canAccess` through eth_call with the contract's ABI, one record's AccessLogged
// events decoded, a transaction's receipt and its block. Prints one JSON object.
//
// node rpc_client.mjs URL TOKEN ARTIFACT CONTRACT READER RECORD TX_HASH
import { readFileSync } from 'node:fs';
import { createPublicClient, http, parseEventLogs } from 'viem';

const [url, token, artifact, contract, reader, record, txHash] = process.argv.slice(2);
const { abi } = JSON.parse(readFileSync(artifact, 'utf8'));
const client = createPublicClient({
  transport: http(url, { fetchOptions: { headers: { Authorization: `Bearer ${token}` } } }),
});

const chainId = await client.getChainId();
const blockNumber = await client.getBlockNumber();
const canAccess = await client.readContract({
  address: contract, abi, functionName: 'canAccess', args: [reader, BigInt(record)],
});
const logs = await client.getContractEvents({
  address: contract, abi, eventName: 'AccessLogged', args: { recordId: BigInt(record) },
  fromBlock: 0n, toBlock: 'latest',
});
const receipt = await client.getTransactionReceipt({ hash: txHash });
const block = await client.getBlock({ blockNumber: receipt.blockNumber, includeTransactions: true });
const events = parseEventLogs({ abi, logs: receipt.logs });

console.log(JSON.stringify({
  chainId,
  blockNumber: blockNumber.toString(),
  canAccess,
  accessLogged: logs.map((l) => ({
    recordId: l.args.recordId.toString(),
    reader: l.args.reader,
    nonce: l.args.nonce.toString(),
    emergency: l.args.emergency,
    blockNumber: l.blockNumber.toString(),
    transactionHash: l.transactionHash,
  })),
  receipt: {
    status: receipt.status,
    from: receipt.from,
    to: receipt.to,
    blockHash: receipt.blockHash,
    events: events.map((e) => e.eventName),
  },
  block: {
    hash: block.hash,
    transactions: block.transactions.map((t) => t.hash),
    baseFeePerGas: block.baseFeePerGas.toString(),
  },
}));
