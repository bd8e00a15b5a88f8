#!/usr/bin/env node
/**
 * `fetchback-sim`: a fleet of virtual devices, on the real agent code, against any Fetchback
 * server. `fetchback-sim --help` lists every flag, fault and profile.
 */
import { writeFile } from 'node:fs/promises';

import { isFetchbackError } from '@fetchback/shared';
import { Command } from 'commander';
import { pino } from 'pino';

import { type CliValues, declareOptions, faultHelp, toSimulationOptions } from './cli-options.js';
import { renderHtml } from './report/html.js';
import { formatReport } from './report/report.js';
import { type EndCondition, Simulation } from './simulation.js';

async function main(argv: string[]): Promise<void> {
  const program = declareOptions(
    new Command('fetchback-sim')
      .description('Runs N virtual devices on the real Fetchback agent code, with injected faults.')
      .version('0.1.0'),
  ).addHelpText('after', faultHelp());
  program.parse(argv);
  const values = program.opts<CliValues>();
  const logger = pino({ level: values.logLevel }, pino.destination(2));
  const options = { ...toSimulationOptions(values), logger };

  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());

  const simulation = await Simulation.start(options);
  const end: EndCondition = {
    signal: abort.signal,
    ...(values.duration ? { durationMs: Number(values.duration) * 1000 } : {}),
    ...(values.untilIdle
      ? { untilIdle: true, idleTimeoutMs: Number(values.idleTimeout) * 1000 }
      : {}),
  };
  const reason = await simulation.waitForEnd(end);
  const report = await simulation.finish();

  console.log(`run ended: ${reason}`);
  console.log(formatReport(report));
  if (values.report) await writeFile(values.report, `${JSON.stringify(report, null, 1)}\n`);
  if (values.html) await writeFile(values.html, renderHtml(report));
  if (values.report) console.log(`report: ${values.report}`);
  if (values.html) console.log(`update curve: ${values.html}`);
}

main(process.argv).then(
  () => process.exit(0),
  (err: unknown) => {
    const text = isFetchbackError(err) ? `${err.code}: ${err.message}` : String(err);
    console.error(`fetchback-sim: ${text}`);
    process.exit(1);
  },
);
