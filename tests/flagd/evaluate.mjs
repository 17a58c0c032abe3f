// With `--share N PREFIX` instead of keys, evaluates every flag for the N targeting keys PREFIX1 to
// PREFIXN and prints {"flag": how many were true}.
//
// Loads a flagd flag-definition file into flagd's own evaluator (@openfeature/flagd-core) with
// strict validation, so that the file must pass the validator flagd-core precompiles from flagd's
// published schema (flags.json and targeting.json, https://flagd.dev/schema/v0/), and evaluates
// every flag for each targeting key given. Usage: node evaluate.mjs FILE KEY...
// An empty KEY means no targetingKey; with no KEY the file is only validated. Prints
// {"flag": {"key": value}}; exits 1 on a schema finding (printing the validator's errors) and on
// any problem the evaluator logs.
import { readFileSync } from 'node:fs';
import { FlagdCore, MemoryStorage } from '@openfeature/flagd-core';

const [file, ...keys] = process.argv.slice(2);
const problems = [];
const logger = {
  error: (...args) => problems.push(args.map(String).join(' ')),
  warn: (...args) => problems.push(args.map(String).join(' ')),
  info: () => {},
  debug: () => {},
};
// FlagdCore's own setConfigurations drops the strict flag and only logs schema findings at debug
// level, so the file is loaded into a storage that validates strictly, then handed to the core.
const storage = new MemoryStorage(logger);
try {
  storage.setConfigurations(readFileSync(file, 'utf8'), true);
} catch (error) {
  console.error(`${file} fails flagd's schema: ${error.cause?.message ?? error.message}`);
  process.exit(1);
}
const core = new FlagdCore(storage, logger);
if (keys[0] === '--share') {
  const [, count, prefix] = keys;
  const shares = {};
  for (const [flag] of core.getFlags()) {
    shares[flag] = 0;
    for (let i = 1; i <= Number(count); i++) {
      if (core.resolveBooleanEvaluation(flag, false, { targetingKey: `${prefix}${i}` }, logger).value) {
        shares[flag] += 1;
      }
    }
  }
  if (problems.length > 0) {
    console.error(problems.join('\n'));
    process.exit(1);
  }
  console.log(JSON.stringify(shares));
  process.exit(0);
}
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
