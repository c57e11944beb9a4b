// Writes src/js/tickwire.global.js, the classic-script twin of src/js/tickwire.js:
//   node tests/js/make-global.mjs          (write it)
//   node tests/js/make-global.mjs --check  (exit 1 if the committed file is stale)
// A classic <script> cannot contain `export`, so the twin is the module's text without its
// one export statement (the file's last), wrapped in a function that sets window.Tickwire;
// the other exports become properties of it (Tickwire.TickwireError, ...). No other
// change, so the two cannot behave differently. global.test.mjs runs --check.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const src = join(root, 'src', 'js', 'tickwire.js');
const out = join(root, 'src', 'js', 'tickwire.global.js');

export function makeGlobal(text) {
  const m = /\nexport \{([^}]*)\};\s*$/.exec(text);
  if (!m) throw new Error('tickwire.js must end with its one `export { ... };` statement');
  const body = text.slice(0, m.index + 1);
  if (/^\s*export\s/m.test(body)) throw new Error('tickwire.js has an export before its last statement');
  const names = m[1].split(',').map((s) => s.trim()).filter(Boolean);
  if (names[0] !== 'Tickwire') throw new Error('the first export must be Tickwire');
  const statics = names.slice(1).map((n) => `  Tickwire.${n} = ${n};\n`).join('');
  return (
    '// Generated from tickwire.js by `node tests/js/make-global.mjs`: do not edit.\n' +
    '// <script src="/tickwire.global.js"></script> defines window.Tickwire; the module\'s other\n' +
    `// exports are properties of it (${names.slice(1).map((n) => 'Tickwire.' + n).join(', ')}).\n` +
    '(function (root) {\n"use strict";\n' +
    body +
    '\n' + statics +
    '  root.Tickwire = Tickwire;\n' +
    '})(typeof globalThis !== "undefined" ? globalThis : this);\n'
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const want = makeGlobal(readFileSync(src, 'utf8'));
  if (process.argv.includes('--check')) {
    let have = '';
    try {
      have = readFileSync(out, 'utf8');
    } catch {}
    if (have !== want) {
      console.error('src/js/tickwire.global.js is stale: run node tests/js/make-global.mjs');
      process.exit(1);
    }
  } else {
    writeFileSync(out, want);
    console.error('wrote ' + out);
  }
}
