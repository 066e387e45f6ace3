#!/usr/bin/env node
// `node scripts/accuracy-table.js [flags]` runs the accuracy table (scripts/accuracy-table.mjs, an
// ES module for vega-lite) with the same flags.
import('./accuracy-table.mjs').catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
