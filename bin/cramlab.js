#!/usr/bin/env node
// Thin launcher: run the TypeScript CLI through tsx, so no build step is needed. It calls the CLI
// explicitly: reached through npx, npm exec or a global/symlinked bin, argv[1] is `.bin/cramlab`.
require('tsx/cjs');
require('../src/cli/main.ts').runCli();
