// An independent keystore v3 implementation (ethers 6) for tests/integration/keystore.rs.
//   node keystore.mjs new PASSWORD OUT   a fresh wallet encrypted to OUT; prints its address
//   node keystore.mjs open FILE PASSWORD decrypts FILE; prints its address
import { readFileSync, writeFileSync } from 'node:fs';
import { Wallet, encryptKeystoreJson } from 'ethers';

const [mode, a, b] = process.argv.slice(2);
if (mode === 'new') {
  const wallet = Wallet.createRandom();
  // Light scrypt (n = 2^12) keeps the test fast; the server re-encrypts at its own cost.
  writeFileSync(b, await encryptKeystoreJson(wallet, a, { scrypt: { N: 1 << 12 } }));
  console.log(wallet.address.toLowerCase());
} else if (mode === 'open') {
  const wallet = await Wallet.fromEncryptedJson(readFileSync(a, 'utf8'), b);
  console.log(wallet.address.toLowerCase());
} else {
  console.error('usage: node keystore.mjs new PASSWORD OUT | open FILE PASSWORD');
  process.exit(2);
}
