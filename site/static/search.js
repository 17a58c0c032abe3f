// Filters the index table as you type. The page works without this script: every flag is
// listed, the filter form stays hidden, and the type, group, owner, environment and stale
// pages filter statically. Data comes from search.json (same site); the rows' data-
// attributes are the fallback.
(function () {
  "use strict";
  var table = document.getElementById("flags");
  if (!table) return;
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var byName = {};
  rows.forEach(function (row) { byName[row.dataset.name] = { row: row }; });
  var field = function (id) { return document.getElementById(id); };
  var form = field("filters");
  if (form) form.hidden = false;
  var search = field("search"), type = field("filter-type"), group = field("filter-group"), owner = field("filter-owner");
  var environment = field("filter-environment"), state = field("filter-state"), stale = field("filter-stale"), count = field("count");

  function fill(select, values) {
    values.sort().forEach(function (value) {
      var option = document.createElement("option");
      option.value = value; option.textContent = value; select.appendChild(option);
    });
  }

  function index(entries) {
    var groups = {}, owners = {};
    entries.forEach(function (entry) {
      var item = byName[entry.name];
      if (!item) return;
      item.entry = entry;
      groups[entry.group] = true;
      entry.owners.forEach(function (o) { owners[o] = true; });
    });
    fill(group, Object.keys(groups));
    fill(owner, Object.keys(owners));
  }

  function fromRows() {
    return rows.map(function (row) {
            var states = {};
      Array.prototype.forEach.call(row.attributes, function (attribute) {
        if (attribute.name.indexOf("data-state-") === 0) states[attribute.name.slice(11)] = attribute.value;
      });
      return { name: row.dataset.name, text: row.dataset.search, type: row.dataset.type, group: row.dataset.group,
               owners: row.dataset.owners ? row.dataset.owners.split(" ") : [], states: states, stale: row.dataset.stale };
    });
  }

  function apply() {
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (row) {
      var entry = byName[row.dataset.name].entry;
      var visible = !!entry &&
        words.every(function (w) { return entry.text.indexOf(w) !== -1; }) &&
        (!type.value || entry.type === type.value) &&
        (!group.value || entry.group === group.value) &&
        (!owner.value || entry.owners.indexOf(owner.value) !== -1) &&
        (!state.value || entry.states[environment.value] === state.value) &&
        (!stale.checked || entry.stale !== "ok");
      row.hidden = !visible;
      if (visible) shown++;
    });
    count.textContent = shown + (shown === 1 ? " flag" : " flags");
  }

  function start(entries) {
    index(entries);
    [search, type, group, owner, environment, state, stale].forEach(function (input) {
      input.addEventListener("input", apply);
      input.addEventListener("change", apply);
    });
    var query = new URLSearchParams(window.location.search).get("q");
    if (query) search.value = query;
    apply();
  }

  fetch("search.json").then(function (response) {
    if (!response.ok) throw new Error(response.status);
    return response.json();
  }).then(start, function () { start(fromRows()); });
})();
