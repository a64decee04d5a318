#!/usr/bin/env node
// Makes the npm solc-js compiler answer like a native `solc` binary, for py-solc-x:
//   solc-shim.js --version          -> "solc, the solidity compiler ...\nVersion: X"
//   solc-shim.js --standard-json    -> reads standard JSON on stdin, writes the output JSON
// Sources arrive with their content inlined (ledger/chain/compile.py resolves imports), so no
// import callback is needed; one is still provided for node_modules paths as a safety net.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require(path.join(__dirname, 'node_modules', 'solc'));

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write('solc, the solidity compiler commandline interface\nVersion: ' + solc.version() + '\n');
  process.exit(0);
}
if (!args.includes('--standard-json')) {
  process.stderr.write('solc-shim: only --version and --standard-json are supported\n');
  process.exit(2);
}
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const input = Buffer.concat(chunks).toString('utf8');
  const findImports = (p) => {
    const candidate = path.join(__dirname, 'node_modules', p);
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, 'utf8') };
    return { error: 'File not found: ' + p };
  };
  process.stdout.write(solc.compile(input, { import: findImports }));
});
