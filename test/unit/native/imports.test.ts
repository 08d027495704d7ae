/**
 * native/ is the only importer of uWebSockets.js, lmdb and sodium-native
 * (docs/ARCHITECTURE.md, "Layout"; STYLE: native addons are loaded in one
 * place). Each facade enforces what a raw import would skip: uws.ts refuses
 * the pure-JS fallback (the pinned build silently serves from it when its
 * binary fails to load), lmdb.ts opens every database with `cache: false` (a
 * per-process read cache would miss a revocation written by another worker),
 * sodium.ts keeps argon2id parameters at OWASP's minimum. An import elsewhere
 * bypasses that, so this test reads every TypeScript source of src/, wire/,
 * warpgate/, scripts/ and bench/ and lists each one that names those
 * packages: static and type-only imports, re-exports, `require()` and
 * dynamic `import()`, subpaths included. The TypeScript pre-processor reads
 * the import list, so a package name in a comment or a string is not one.
 */
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import * as ts from 'typescript';

const ROOT = resolve(__dirname, '../../../..');
const NATIVE_PACKAGES = ['uWebSockets.js', 'lmdb', 'sodium-native'];
const SCANNED = ['src', 'wire', 'warpgate', 'scripts', 'bench'];

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.isFile() && e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The native packages a source file imports (any form TypeScript or Node would resolve). */
function nativeImports(source: string): string[] {
  const info = ts.preProcessFile(source, true, true);
  const specs = [...info.importedFiles, ...info.referencedFiles, ...info.typeReferenceDirectives].map((f) => f.fileName);
  return specs.filter((s) => NATIVE_PACKAGES.some((pkg) => s === pkg || s.startsWith(`${pkg}/`)));
}

test('the scanner sees every import form (so a clean scan means something)', (t) => {
  const forms = [
    `import { open } from 'lmdb';`,
    `import 'lmdb';`,
    `import type * as U from "uWebSockets.js";`,
    `export { open } from 'lmdb';`,
    `export * from 'sodium-native';`,
    `const s = require('sodium-native');`,
    `const u = await import('uWebSockets.js');`,
    `import x = require('lmdb');`,
    `import { y } from 'lmdb/dist/index.cjs';`,
    `/// <reference types="sodium-native" />`,
  ];
  for (const f of forms) t.is(nativeImports(f).length, 1, f);
  // Not imports: comments, strings, look-alike names.
  for (const f of [`// import { open } from 'lmdb';`, `/* require('sodium-native') */`, `const s = "uWebSockets.js";`, `import x from 'lmdb-extra';`, `import y from './lmdb.js';`]) {
    t.deepEqual(nativeImports(f), [], f);
  }
});

test('only native/ imports uWebSockets.js, lmdb and sodium-native', (t) => {
  const offenders: string[] = [];
  let scanned = 0;
  for (const dir of SCANNED) {
    for (const file of tsFiles(join(ROOT, dir))) {
      scanned++;
      for (const spec of nativeImports(readFileSync(file, 'utf8'))) offenders.push(`${relative(ROOT, file)} imports '${spec}'`);
    }
  }
  t.true(scanned > 50, `scanned ${scanned} files under ${SCANNED.join(', ')}`);
  t.deepEqual(offenders, [], 'import through native/uws.ts, native/lmdb.ts or native/sodium.ts instead');
});

test('native/ holds the one importer of each package', (t) => {
  const found = new Map<string, string[]>();
  for (const file of tsFiles(join(ROOT, 'native'))) {
    for (const spec of nativeImports(readFileSync(file, 'utf8'))) {
      const pkg = NATIVE_PACKAGES.find((p) => spec === p || spec.startsWith(`${p}/`))!;
      found.set(pkg, [...new Set([...(found.get(pkg) ?? []), relative(ROOT, file)])]);
    }
  }
  // The ambient declaration file declares the module; it does not import it.
  t.deepEqual(found.get('uWebSockets.js'), ['native/uws.ts']);
  t.deepEqual(found.get('lmdb'), ['native/lmdb.ts']);
  t.deepEqual(found.get('sodium-native'), ['native/sodium.ts']);
});
