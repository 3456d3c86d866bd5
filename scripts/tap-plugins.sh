#!/bin/bash
# tap-plugins.sh: builds tap's plugin set as package.json's "tap.plugin" asks (without @tapjs/typescript:
# the tests run compiled) before tap runs, when it is not built that way yet. npm ci installs tap's default
# set, and tap rebuilds it on its first run, but only after choosing the test processes' loaders from the
# old set: that whole run then loads the TypeScript loader into every test process (~0.45 s of CPU each,
# measured; the run after it does not). Run by npm's pretest.
set -eu
cd "$(dirname "$0")/.."
built=node_modules/@tapjs/test/test-built/dist/commonjs/index.js
if grep -q '@tapjs/typescript' "$built" 2>/dev/null; then
  echo "o2fuse: building tap's plugin set (package.json leaves out @tapjs/typescript)"
  npx --no-install tap build >/dev/null
fi
