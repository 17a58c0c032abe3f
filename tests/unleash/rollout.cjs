// Unleash's own flexibleRollout strategy (unleash-client, pinned in package-lock.json), asked
// whether each actor is in a flag's rollout, as the `unleash` backend writes it: the flag name
// as `groupId`, the Flipper id as `userId`. Usage: node rollout.cjs FLAG PERCENT ID...
// Prints {"ID": true|false}.
const FlexibleRolloutStrategy = require('unleash-client/lib/strategy/flexible-rollout-strategy').default;

const [flag, percent, ...ids] = process.argv.slice(2);
const strategy = new FlexibleRolloutStrategy();
const parameters = { rollout: percent, stickiness: 'userId', groupId: flag };
const results = {};
for (const id of ids) {
  results[id] = strategy.isEnabled(parameters, { userId: id });
}
console.log(JSON.stringify(results));
