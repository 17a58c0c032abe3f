// Filters the index table as you type, and keeps every filter in the page's address, so a link
// reproduces the view. The page works without this script: every flag is listed, the filter form
// stays hidden, and the type, group, owner, environment and stale pages filter statically. Data
// comes from search.json (same site); the rows' data- attributes and text are the fallback.
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
  // The address's parameters, in the order they are written.
  var inputs = [["q", search], ["type", type], ["group", group], ["owner", owner], ["state", state], ["env", environment], ["stale", stale]];
  var differs = { pending: true, drift: true, held: true, differs: true, "not synced": true };

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
      var states = {}, status = {};
      Array.prototype.forEach.call(row.querySelectorAll("td[data-environment]"), function (cell) {
        var where = cell.dataset.environment, chip = cell.querySelector(".chip"), marker = cell.querySelector(".marker");
        if (chip) states[where] = chip.classList[1];
        if (marker) status[where] = marker.classList[1];
      });
      // The chips' titles hold every state in full, actors included.
      var text = row.textContent + " " + Array.prototype.map.call(row.querySelectorAll("[title]"), function (element) { return element.title; }).join(" ");
      return { name: row.dataset.name, text: text.toLowerCase(), type: row.dataset.type, group: row.dataset.group,
               owners: row.dataset.owners ? row.dataset.owners.split(" ") : [], states: states, status: status, stale: row.dataset.stale };
    });
  }

  function matchesState(entry) {
    if (!state.value) return true;
    var where = environment.value;
    var status = (entry.status || {})[where];
    if (state.value === "differs") return !!status && differs[status] === true && status !== "not synced";
    if (differs[state.value]) return status === state.value;
    return entry.states[where] === state.value;
  }

  // While a filter is set, the full list is set aside (`content-visibility: hidden`, which keeps
  // its layout for when it comes back) and the flags that match are copied into a table of their
  // own, at most LIMIT of them until "show all" is pressed: with 10,000 flags a keystroke then
  // lays out a few hundred rows, not every row.
  var LIMIT = 500;
  var everything = table.parentNode;
  var matching = everything.cloneNode(false);
  var matchTable = table.cloneNode(false);
  matchTable.removeAttribute("id");
  matchTable.id = "matches";
  matchTable.appendChild(table.tHead.cloneNode(true));
  var results = document.createElement("tbody");
  matchTable.appendChild(results);
  matching.appendChild(matchTable);
  matching.classList.add("inactive");
  everything.parentNode.insertBefore(matching, everything);
  var more = document.createElement("button");
  more.type = "button";
  more.hidden = true;
  matching.appendChild(more);
  var showAll = false;
  more.addEventListener("click", function () { showAll = true; apply(); });

  function apply() {
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var filtering = words.length > 0 || type.value || group.value || owner.value || state.value || stale.checked;
    var matches = [];
    if (filtering) {
      rows.forEach(function (row) {
        var entry = byName[row.dataset.name].entry;
        var visible = !!entry &&
          words.every(function (w) { return entry.text.indexOf(w) !== -1; }) &&
          (!type.value || entry.type === type.value) &&
          (!group.value || entry.group === group.value) &&
          (!owner.value || entry.owners.indexOf(owner.value) !== -1) &&
          matchesState(entry) &&
          (!stale.checked || entry.stale !== "ok");
        if (visible) matches.push(row);
      });
    }
    var listed = showAll ? matches : matches.slice(0, LIMIT);
    var copy = document.createDocumentFragment();
    listed.forEach(function (row) { copy.appendChild(row.cloneNode(true)); });
    results.replaceChildren(copy);
    matching.classList.toggle("inactive", !filtering);
    everything.classList.toggle("inactive", !!filtering);
    var shown = filtering ? matches.length : rows.length;
    count.textContent = shown + (shown === 1 ? " flag" : " flags") + (listed.length < matches.length ? ", the first " + listed.length + " listed" : "");
    more.hidden = listed.length >= matches.length;
    more.textContent = "Show all " + matches.length + " flags";
  }

  // Writes the filters that are set into the address, without a new history entry per key.
  function remember() {
    var params = new URLSearchParams();
    inputs.forEach(function (pair) {
      var name = pair[0], input = pair[1];
      if (input.type === "checkbox") { if (input.checked) params.set(name, "1"); return; }
      if (name === "env" && !state.value) return;
      if (input.value) params.set(name, input.value);
    });
    var query = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (query ? "?" + query : "") + window.location.hash);
  }

  function restore() {
    var params = new URLSearchParams(window.location.search);
    inputs.forEach(function (pair) {
      var value = params.get(pair[0]);
      if (value === null) return;
      if (pair[1].type === "checkbox") pair[1].checked = value !== "" && value !== "0";
      else if (pair[1].tagName !== "SELECT" || Array.prototype.some.call(pair[1].options, function (o) { return o.value === value; })) pair[1].value = value;
    });
  }

  function start(entries) {
    index(entries);
    restore();
    inputs.forEach(function (pair) {
      var onChange = function () { showAll = false; apply(); remember(); };
      pair[1].addEventListener("input", onChange);
      pair[1].addEventListener("change", onChange);
    });
    apply();
  }

  fetch("search.json").then(function (response) {
    if (!response.ok) throw new Error(response.status);
    return response.json();
  }).then(start, function () { start(fromRows()); });
})();
