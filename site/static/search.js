// Filters the index as you type, and keeps every filter in the page's address, so a link
// reproduces the view. The page works without this script: every flag is listed, the filter form
// stays hidden, and the type, group, owner, environment and stale pages filter statically.
//
// The script runs as soon as the form is read, before the table of every flag: it reads
// search.json (same site) and, while a filter is set, lists the flags that match in a table of
// their own (#results), at most LIMIT of them until "show all" is pressed, and sets the full list
// aside (`body.filtering`, with `content-visibility: hidden`, which keeps its layout). With 10,000
// flags a search then answers before the full list is read, and lays out a few hundred rows per
// keystroke instead of every row. When search.json cannot be fetched (pages opened from disk),
// the full list's rows are the data, once they are read.
(function () {
  "use strict";
  var field = function (id) { return document.getElementById(id); };
  var form = field("filters");
  if (!form) return;
  form.hidden = false;
  var search = field("search"), type = field("filter-type"), group = field("filter-group"), owner = field("filter-owner");
  var environment = field("filter-environment"), state = field("filter-state"), stale = field("filter-stale"), count = field("count");
  var results = field("results");
  // The address's parameters, in the order they are written.
  var inputs = [["q", search], ["type", type], ["group", group], ["owner", owner], ["state", state], ["env", environment], ["stale", stale]];
  var environments = Array.prototype.map.call(environment.options, function (option) { return option.value; });
  var important = (form.dataset.important || "").split(" ").filter(Boolean);
  var markers = { drift: "⚠ drift", pending: "↻ pending", held: "⊘ held", differs: "⚠ differs" };
  var LIMIT = 500;
  var entries = null, showAll = false;

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function link(href, text, className) {
    var node = element("a", className, text);
    node.href = href;
    return node;
  }
  function chip(className, words, title) {
    var node = element("span", "chip " + className, words);
    if (title) node.title = title;
    return node;
  }

  // A row like the template's (rows.html), from a search.json entry.
  function row(entry) {
    var tr = element("tr");
    tr.dataset.name = entry.name;
    tr.dataset.type = entry.type;
    tr.dataset.group = entry.group;
    tr.dataset.owners = entry.owners.join(" ");
    tr.dataset.stale = entry.stale;
    var name = element("th", "name");
    name.scope = "row";
    name.appendChild(link("flags/" + entry.name + ".html", entry.name, "flag"));
    if (entry.stale !== "ok") { name.appendChild(document.createTextNode(" ")); name.appendChild(element("span", "badge " + entry.stale, entry.stale)); }
    var meta = element("div", "meta");
    meta.appendChild(link("types/" + entry.type + ".html", entry.type));
    meta.appendChild(document.createTextNode(" · "));
    meta.appendChild(link("groups/" + entry.group_slug + ".html", entry.group));
    entry.owners.forEach(function (owner, position) {
      meta.appendChild(document.createTextNode(" · "));
      meta.appendChild(link("owners/" + entry.owner_slugs[position] + ".html", owner));
    });
    name.appendChild(meta);
    name.appendChild(element("div", "description", entry.description));
    tr.appendChild(name);
    entry.cells.forEach(function (cell, position) {
      var where = environments[position];
      var td = element("td", "state");
      td.dataset.environment = where;
      var rank = important.indexOf(where);
      if (rank !== -1) { td.classList.add("important"); td.style.order = String(rank - 10); }
      td.appendChild(chip(cell.class, cell.chip, cell.title));
      if (cell.status) {
        var live = element("span", "live");
        var marker = element("span", "marker " + (cell.status === "differs" ? "drift" : cell.status), cell.held_back ? "⊘ held back" : markers[cell.status]);
        if (cell.held_back) marker.title = cell.held_back;
        live.appendChild(marker);
        live.appendChild(document.createTextNode(" "));
        live.appendChild(element("span", "live-label", "live"));
        live.appendChild(document.createTextNode(" "));
        live.appendChild(chip(cell.live_class, cell.live_chip, cell.live_title));
        td.appendChild(document.createTextNode(" "));
        td.appendChild(live);
      }
      tr.appendChild(td);
    });
    return tr;
  }

  function table(rows) {
    var node = element("table", "flags cards");
    node.id = "matches";
    var head = element("tr");
    var flag = element("th", "", "Flag");
    flag.scope = "col";
    head.appendChild(flag);
    environments.forEach(function (where) {
      var th = element("th", important.indexOf(where) !== -1 ? "important" : "");
      th.scope = "col";
      th.appendChild(link("environments/" + where + ".html", where));
      head.appendChild(th);
    });
    node.appendChild(element("thead")).appendChild(head);
    var body = node.appendChild(element("tbody"));
    rows.forEach(function (tr) { body.appendChild(tr); });
    return node;
  }

  function fill(select, values) {
    values.sort().forEach(function (value) {
      var option = document.createElement("option");
      option.value = value; option.textContent = value; select.appendChild(option);
    });
  }

  function matchesState(entry) {
    if (!state.value) return true;
    var status = entry.status[environment.value];
    if (state.value === "differs") return !!status;
    if (markers[state.value]) return status === state.value;
    return entry.states[environment.value] === state.value;
  }

  function apply() {
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var filtering = !!(words.length || type.value || group.value || owner.value || state.value || stale.checked);
    var matches = !filtering ? [] : entries.filter(function (entry) {
      return words.every(function (w) { return entry.text.indexOf(w) !== -1; }) &&
        (!type.value || entry.type === type.value) &&
        (!group.value || entry.group === group.value) &&
        (!owner.value || entry.owners.indexOf(owner.value) !== -1) &&
        matchesState(entry) &&
        (!stale.checked || entry.stale !== "ok");
    });
    var listed = showAll ? matches : matches.slice(0, LIMIT);
    var content = [table(listed.map(function (entry) { return entry.row ? entry.row.cloneNode(true) : row(entry); }))];
    if (listed.length < matches.length) {
      var more = element("button", "", "Show all " + matches.length + " flags");
      more.type = "button";
      more.addEventListener("click", function () { showAll = true; apply(); });
      content.push(more);
    }
    results.replaceChildren.apply(results, filtering ? content : []);
    document.body.classList.toggle("filtering", filtering);
    var shown = filtering ? matches.length : entries.length;
    count.textContent = shown + (shown === 1 ? " flag" : " flags") + (listed.length < matches.length ? ", the first " + listed.length + " listed" : "");
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

  function start(list) {
    entries = list;
    var groups = {}, owners = {};
    entries.forEach(function (entry) {
      groups[entry.group] = true;
      entry.owners.forEach(function (o) { owners[o] = true; });
    });
    fill(group, Object.keys(groups));
    fill(owner, Object.keys(owners));
    restore();
    inputs.forEach(function (pair) {
      var onChange = function () { showAll = false; apply(); remember(); };
      pair[1].addEventListener("input", onChange);
      pair[1].addEventListener("change", onChange);
    });
    apply();
  }

  // The data, read from the full list's rows: their data- attributes and text, the chips'
  // classes and tooltips (which hold every state whole, actors included) and the markers.
  function fromRows() {
    var rows = Array.prototype.slice.call(field("flags").tBodies[0].rows);
    return rows.map(function (tr) {
      var states = {}, status = {};
      Array.prototype.forEach.call(tr.querySelectorAll("td[data-environment]"), function (cell) {
        var where = cell.dataset.environment, first = cell.querySelector(".chip"), marker = cell.querySelector(".marker");
        if (first) states[where] = first.classList[1];
        if (marker) status[where] = marker.textContent.split(" ")[1];
      });
      var text = tr.textContent + " " + Array.prototype.map.call(tr.querySelectorAll("[title]"), function (node) { return node.title; }).join(" ");
      return { name: tr.dataset.name, text: text.toLowerCase(), type: tr.dataset.type, group: tr.dataset.group,
               owners: tr.dataset.owners ? tr.dataset.owners.split(" ") : [], states: states, status: status, stale: tr.dataset.stale, row: tr };
    });
  }

  fetch("search.json").then(function (response) {
    if (!response.ok) throw new Error(response.status);
    return response.json();
  }).then(start, function () {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { start(fromRows()); });
    else start(fromRows());
  });
})();
