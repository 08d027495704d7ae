/**
 * A writer process for the kill -9 test (replication.test.ts): opens the
 * store of a node's data directory (replicating through the settings the
 * node's edge left there) and creates sessions `kill-0`, `kill-1`, … one
 * after another, printing `ok N` once each write has resolved.
 */
import { openStore } from '../../src/store/index.js';

async function main(): Promise<void> {
  const [dir, countRaw] = process.argv.slice(2);
  const s = openStore(dir!);
  await s.replica?.catchUp();
  const count = Number(countRaw);
  for (let i = 0; i < count; i++) {
    const now = Date.now();
    await s.sessions.create(`kill-${i}`, { id: `kill-${i}`, principalType: 'user', userId: 'writer', projectId: 'demo', createdAt: now, lastSeenAt: now, authTime: now, amr: ['pwd'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null });
    process.stdout.write(`ok ${i}\n`);
  }
  await s.close();
}

main().catch((err: Error) => {
  process.stderr.write(`writer: ${err.message}\n`);
  process.exit(1);
});
