// Loads a flagd flag-definition file into flagd's own evaluator (@openfeature/flagd-core), whose
// validator is compiled from flagd's published schema (flags.json and targeting.json), and
// evaluates every flag for each targeting key given. Usage: node evaluate.mjs FILE KEY...
// An empty KEY means no targetingKey. Prints {"flag": {"key": value}}; exits 1 on any problem the
// evaluator logs, schema findings included.
import { readFileSync } from 'node:fs';
import { FlagdCore } from '@openfeature/flagd-core';

const [file, ...keys] = process.argv.slice(2);
const problems = [];
const logger = {
  error: (...args) => problems.push(args.map(String).join(' ')),
  warn: (...args) => problems.push(args.map(String).join(' ')),
  info: () => {},
  debug: () => {},
};
const core = new FlagdCore(undefined, logger);
core.setConfigurations(readFileSync(file, 'utf8'));
const results = {};
for (const [flag] of core.getFlags()) {
  results[flag] = {};
  for (const key of keys) {
    const context = key === '' ? {} : { targetingKey: key };
    const resolution = core.resolveBooleanEvaluation(flag, false, context, logger);
    results[flag][key] = resolution.value;
  }
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(JSON.stringify(results));
