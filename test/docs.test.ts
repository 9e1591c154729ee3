/**
 * Keeps the documentation honest: every error code the server can send is
 * documented, and nothing documented is stale.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { errorCodes } from '../src/protocol/errors.js';

const read = (path: string): string => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

describe('documentation', () => {
  it('docs/protocol.md lists exactly the error codes of src/protocol/errors.ts', () => {
    const doc = read('docs/protocol.md');
    const section = doc.split('## Error codes')[1]?.split('\n## ')[0] ?? '';
    const documented = [...section.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual([...documented].sort(), [...errorCodes].sort());
  });

  it('README.md names every error code', () => {
    const readme = read('README.md');
    for (const code of errorCodes) assert.match(readme, new RegExp(`\`${code}\``), `README.md does not mention ${code}`);
  });
});
