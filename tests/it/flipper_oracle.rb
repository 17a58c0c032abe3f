# Reads flags back through the real Flipper (Debian's ruby-flipper, ActiveRecord adapter), set up
# the way GitLab's Feature::FlipperFeature and FlipperGate are, and prints what it sees as JSON.
#
# Input on stdin, JSON: {"flags": [names], "actors": [flipper ids], "groups": {name: [flipper ids]},
#                        "draw": a number in [0, 1)}. Flipper's percentage-of-time gate draws
# `rand` on every check; the draw replaces it, so both answers can be compared.
# Output: {name: {persisted, state, boolean, actors, groups, percentage_of_actors,
#                 percentage_of_time, enabled: {"" (no actor) or flipper id: bool}}}.
# Connection from PGHOST, PGPORT, PGUSER and PGDATABASE.

require 'json'
require 'active_record'
require 'flipper'
require 'flipper/adapters/active_record'

input = JSON.parse($stdin.read)

ActiveRecord::Base.establish_connection(
  adapter: 'postgresql',
  host: ENV.fetch('PGHOST'),
  port: ENV.fetch('PGPORT').to_i,
  username: ENV.fetch('PGUSER'),
  database: ENV.fetch('PGDATABASE')
)

class FlipperRecord < ActiveRecord::Base
  self.abstract_class = true
end

class FlipperFeature < FlipperRecord
  self.table_name = 'features'
end

class FlipperGate < FlipperRecord
  self.table_name = 'feature_gates'
end

Actor = Struct.new(:flipper_id)

DRAW = Float(input.fetch('draw'))
Flipper::Gates::PercentageOfTime.prepend(Module.new do
  def rand(*)
    DRAW
  end
end)

input.fetch('groups').each do |name, members|
  Flipper.register(name) { |actor| members.include?(actor.flipper_id) }
end

adapter = Flipper::Adapters::ActiveRecord.new(feature_class: FlipperFeature, gate_class: FlipperGate)
flipper = Flipper.new(adapter)
persisted = adapter.features

output = {}
input.fetch('flags').each do |name|
  feature = flipper[name]
  values = feature.gate_values
  enabled = { '' => feature.enabled? }
  input.fetch('actors').each do |id|
    on = feature.enabled?(Actor.new(id))
    # GitLab's Feature.enabled? turns an enabled result off for an opted-out actor.
    on = false if on && values.actors.include?("#{id}:opt_out")
    enabled[id] = on
  end
  output[name] = {
    persisted: persisted.include?(name),
    state: feature.state.to_s,
    boolean: values.boolean,
    actors: values.actors.to_a.sort,
    groups: values.groups.to_a.sort,
    percentage_of_actors: values.percentage_of_actors,
    percentage_of_time: values.percentage_of_time,
    enabled: enabled
  }
end
puts JSON.generate(output)
