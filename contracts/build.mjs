// Compiles src/EhrRegistry.sol with solc-js (pinned in package.json) through the standard-JSON
// interface and writes out/EhrRegistry.json ({abi, bytecode, deployedBytecode}), the artifact
// that crates/chain embeds so `cargo build` needs no Node.
//   node build.mjs          write the artifact
//   node build.mjs --check  exit 1 when the committed artifact differs from a fresh compile
//   node build.mjs --out F  write to F instead
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import solc from 'solc';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const check = args.includes('--check');
const outIdx = args.indexOf('--out');
const out = outIdx >= 0 ? args[outIdx + 1] : path.join(here, 'out', 'EhrRegistry.json');

const source = fs.readFileSync(path.join(here, 'src', 'EhrRegistry.sol'), 'utf8');
const input = {
  language: 'Solidity',
  sources: { 'EhrRegistry.sol': { content: source } },
  settings: {
    // Cancun keeps the bytecode runnable on consortium nodes that lag behind (FACTS.md).
    evmVersion: 'cancun',
    optimizer: { enabled: true, runs: 10000 },
    viaIR: false,
    metadata: { bytecodeHash: 'none' },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};

const result = JSON.parse(solc.compile(JSON.stringify(input)));
// Warnings fail the build too: the contract compiles clean or not at all.
const problems = (result.errors || []).filter((e) => e.severity !== 'info');
for (const e of problems) console.error(e.formattedMessage);
if (problems.length) process.exit(1);

const c = result.contracts['EhrRegistry.sol'].EhrRegistry;
const artifact = {
  contractName: 'EhrRegistry',
  compiler: `solc ${solc.version()}`,
  abi: c.abi,
  bytecode: '0x' + c.evm.bytecode.object,
  deployedBytecode: '0x' + c.evm.deployedBytecode.object,
};
const text = JSON.stringify(artifact, null, 2) + '\n';

if (check) {
  const committed = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
  if (committed !== text) {
    console.error(`${out} is stale: run \`node contracts/build.mjs\` and commit the result`);
    process.exit(1);
  }
  console.log(`${out} is up to date (${solc.version()})`);
} else {
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, text);
  console.log(`wrote ${out} (${solc.version()}, ${c.evm.deployedBytecode.object.length / 2} bytes runtime)`);
}
