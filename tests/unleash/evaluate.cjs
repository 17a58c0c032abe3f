// Asks Unleash's official Node client (unleash-client) about flags, for tests/it/unleash.rs.
// Reads {url, token, flags: [name], contexts: [Unleash context]} on standard input and prints
// {"enabled": {flag: [bool per context]}, "hashes": {flag: [the client's own flexibleRollout
// bucket (1..100) of the context's userId for the flag, or null]}}.
const fs = require('fs');
const { startUnleash } = require('unleash-client');
const { normalizedStrategyValue } = require('unleash-client/lib/strategy/util');

async function main() {
  const input = JSON.parse(fs.readFileSync(0, 'utf8'));
  const unleash = await startUnleash({
    url: `${input.url}/api/`,
    appName: 'flagops-tests',
    customHeaders: { Authorization: input.token },
    disableMetrics: true,
    refreshInterval: 3600000,
  });
  const enabled = {};
  const hashes = {};
  for (const flag of input.flags) {
    enabled[flag] = input.contexts.map((context) => unleash.isEnabled(flag, context, false));
    hashes[flag] = input.contexts.map((context) =>
      context.userId ? normalizedStrategyValue(context.userId, flag) : null,
    );
  }
  unleash.destroy();
  process.stdout.write(JSON.stringify({ enabled, hashes }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
