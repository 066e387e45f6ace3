/**
 * What the DropIT layers keep for the backward pass, per layer and in total: dropitMemory as
 * data, dropitSummary as a printed table.
 */
import { typeError } from '../../native/errors';
import type { DropitBytes } from './layers';

/** Per layer, the bytes held for the backward pass by the last training forward pass: the dense input, and what DropIT keeps. */
export function dropitMemory(model: { layers: unknown[] }): { layer: string; dense: number; kept: number }[] {
  if (!model || !Array.isArray(model.layers)) throw typeError('model', 'a tf.LayersModel', model);
  return model.layers.filter((l): l is { name: string; backwardBytes: DropitBytes } => typeof (l as { backwardBytes?: unknown }).backwardBytes === 'object')
    .map((l) => ({ layer: l.name, ...l.backwardBytes }));
}

/**
 * dropitMemory as a table, the way model.summary() prints one: per DropIT layer the bytes of its
 * dense input, the bytes it kept for the backward pass of the last training step, and the saving;
 * then the totals. Prints through `print` (console.log by default); returns the totals.
 */
export function dropitSummary(model: { layers: unknown[] }, print: (line: string) => void = console.log): { dense: number; kept: number } {
  if (typeof print !== 'function') throw typeError('print', 'a function taking one line', print);
  const rows = dropitMemory(model), dense = rows.reduce((a, r) => a + r.dense, 0), kept = rows.reduce((a, r) => a + r.kept, 0);
  const saved = (d: number, k: number) => (d > 0 ? `${(100 * (1 - k / d)).toFixed(1)}%` : '-');
  const table = [['DropIT layer', 'dense input (bytes)', 'kept for backward', 'saved'], ...rows.map((r) => [r.layer, String(r.dense), String(r.kept), saved(r.dense, r.kept)]),
    ['total', String(dense), String(kept), saved(dense, kept)]];
  const w = table[0].map((_, c) => Math.max(...table.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((v, c) => (c === 0 ? v.padEnd(w[c]) : v.padStart(w[c]))).join('  ');
  for (const l of [line(table[0]), '-'.repeat(line(table[0]).length), ...table.slice(1).map(line)]) print(l);
  if (rows.length && dense === 0) print('(no training step has run yet: the bytes are those of the last training step)');
  return { dense, kept };
}
