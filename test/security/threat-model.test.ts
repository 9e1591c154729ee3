/**
 * Keeps docs/security.md honest: every threat the issue names has a row,
 * every row names at least one test, and every test it names exists.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const root = new URL('../../', import.meta.url);
const doc = readFileSync(new URL('docs/security.md', root), 'utf8');
const section = doc.split('## Threat model')[1]!.split('\n## ')[0]!;
const rows = section
  .split('\n')
  .filter((line) => line.startsWith('| ') && !line.startsWith('| threat') && !line.startsWith('|---'))
  .map((line) => line.split(' | ').map((cell) => cell.replace(/^\| |\|$/g, '').trim()));

describe('docs/security.md', () => {
  it('has a row for every threat of the issue', () => {
    const threats = rows.map((r) => r[0]!.toLowerCase());
    for (const wanted of ['link guessing', 'answer hijacking', 'share enumeration', 'flooding', 'memory exhaustion', 'log privacy', 'token misuse', 'slow consumers']) {
      assert.ok(threats.some((t) => t.includes(wanted)), `no row for ${wanted}`);
    }
  });

  it('names, in every row, tests that exist', () => {
    let named = 0;
    for (const row of rows) {
      const covered = row.at(-1)!;
      const references = [...covered.matchAll(/`([\w./-]+\.ts)(?: › ([^`]+))?`/g)];
      assert.ok(references.length > 0, `row "${row[0]}" names no test`);
      for (const [, path, title] of references) {
        // Test paths are given relative to test/, scripts relative to the root.
        const found = [new URL(`test/${path}`, root), new URL(path!, root)].find((u) => existsSync(u));
        assert.ok(found, `${path} does not exist`);
        if (title) {
          const text = readFileSync(found, 'utf8');
          // Titles may be shortened with an ellipsis, and some are a test's `describe › it`.
          for (const part of title.replace(/…$/, '').split(' › ')) {
            assert.ok(text.includes(part.replace(/…$/, '')), `${path} has no test "${part}"`);
          }
        }
        named++;
      }
    }
    assert.ok(named >= rows.length);
  });
});
