/** The store contract (contract.ts) on LMDB: a fresh environment in a temporary directory per test. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openStore, type Store } from '../../../src/store/index.js';
import { storeContract } from './contract.js';

storeContract('lmdb', async (t, clock) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mezu-store-contract-'));
  const opened: Store[] = [];
  const open = () => {
    const s = openStore(dir, clock);
    opened.push(s);
    return s;
  };
  t.teardown(async () => {
    for (const s of opened.reverse()) await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { store: open(), peer: open };
});
