// The Node.js version check that runs before anything else: `npm start` and
// `npm run dev` preload it (node -r), `./navi` runs it, and src/server.ts
// imports it first. Plain old JavaScript on purpose, so that any Node.js can
// run it and say in one line what is wrong, instead of failing on syntax or
// a .ts file it cannot load (ERR_UNKNOWN_FILE_EXTENSION, "bad option").
// The minimum is read from package.json's "engines", the one place it is written.
'use strict';

var fs = require('fs');
var path = require('path');

var packageJson = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
var range = String((packageJson.engines && packageJson.engines.node) || '');
var match = /^>=\s*(\d+)/.exec(range);
var minimum = match ? parseInt(match[1], 10) : 0;
var major = parseInt(process.versions.node.split('.')[0], 10);

if (major < minimum) {
  process.stderr.write(
    'navi: needs Node.js ' +
      minimum +
      ' or newer, and this is Node.js ' +
      process.version +
      ' (' +
      process.execPath +
      '); ' +
      'run ./navi start, which installs Node.js ' +
      minimum +
      ' into .cache/ when needed (README.md, "Node 24")\n',
  );
  process.exit(1);
}
