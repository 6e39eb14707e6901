// backpack explore: the page. Plain ES2020, no build step, no libraries; the server's CSP
// forbids inline scripts and style attributes, so all behaviour lives here and all styling in
// explorer.css (colours computed here are set through element.style, which CSP allows).
'use strict';

const TOKEN_KEY = 'backpack-explore-token';
const TOP_K = 10;
const SENSE_TOP = 6;
const TEXT_DELAY = 250;    // typing: wait for a pause before recomputing
const SLIDER_DELAY = 120;  // sliders: quick, but not one request per pixel
const RED = [178, 24, 43];
const BLUE = [33, 102, 172];
const NO_TOKEN = 'Open the URL that `backpack explore` printed (it carries the access token)';

const state = {
  token: null,
  info: null,
  prediction: null,   // last /api/predict answer
  attribution: null,  // {tokens, ids, base, edited, baseDiff, editedDiff} from /api/attribute
  selected: null,     // {index, id, text}: the token whose senses are shown
  userSelected: false,
  senses: null,       // {token: {id, text}, data: /api/senses answer}
  editsOn: new Set(), // names of switched-on edit files
  sliders: new Map(), // "id:sense" -> {id, text, sense, scale}; Map keeps the order they were added
  errors: new Map(),  // source -> {message, field}
  downloadURL: null,
  inFlight: 0,
};

// ---------------------------------------------------------------- small helpers

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Builds an element. Props: class, text, data {...}, on<event> handlers, else DOM properties. */
function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'data') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of [].concat(children)) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

/** The server encodes non-finite floats as "inf", "-inf", "nan". */
function num(x) {
  if (typeof x === 'number') return x;
  if (x === 'inf') return Infinity;
  if (x === '-inf') return -Infinity;
  if (x === null || x === undefined) return null;
  const v = Number(x);
  return Number.isNaN(v) ? NaN : v;
}

function signed(v, digits = 4) {
  v = num(v);
  if (v === null) return '—';
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'nan' : (v > 0 ? '+∞' : '-∞');
  return (v >= 0 ? '+' : '') + v.toFixed(digits);
}

/** Four significant digits, without exponents for ordinary magnitudes. */
function sig4(v) {
  v = num(v);
  if (v === null) return '—';
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'nan' : (v > 0 ? '∞' : '-∞');
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e-4 && a < 1e6 ? String(Number(v.toPrecision(4))) : v.toPrecision(4);
}

function percent(p) {
  if (!Number.isFinite(p)) return '—';
  const x = p * 100;
  if (x > 0 && x < 0.01) return '<0.01%';
  return (x >= 10 ? x.toFixed(1) : x.toFixed(2)) + '%';
}

/** A token with its whitespace made visible: GPT-2 tokens carry their leading space, and ' he' is not 'he'. */
function tokenNode(text, cls = 'tok') {
  const span = el('span', { class: cls });
  if (text === '') { span.append(el('span', { class: 'ws', text: '∅' })); return span; }
  for (const part of text.split(/( +|\n|\t)/)) {
    if (part === '') continue;
    if (part[0] === ' ') span.append(el('span', { class: 'ws', text: '·'.repeat(part.length) }));
    else if (part === '\n') span.append(el('span', { class: 'ws', text: '↵' }));
    else if (part === '\t') span.append(el('span', { class: 'ws', text: '⇥' }));
    else span.append(part);
  }
  return span;
}

/** Diverging colour: blue negative, white 0, red positive, linear in v / max. */
function heatColor(v, max) {
  const t = Number.isFinite(v) && max > 0 ? Math.max(-1, Math.min(1, v / max)) : 0;
  const [r, g, b] = t >= 0 ? RED : BLUE;
  const a = Math.abs(t);
  const mix = (c) => Math.round(255 + (c - 255) * a);
  return { background: `rgb(${mix(r)}, ${mix(g)}, ${mix(b)})`, dark: a > 0.55 };
}

function paint(node, v, max) {
  const c = heatColor(v, max);
  node.style.backgroundColor = c.background;
  node.classList.toggle('on-dark', c.dark);
}

function debounce(fn) {
  let timer = null;
  return (delay) => { clearTimeout(timer); timer = setTimeout(fn, delay); };
}

// ---------------------------------------------------------------- token, API, errors

/** The token arrives once in the URL; keep it for this tab and take it out of the address bar. */
function readToken() {
  const url = new URL(location.href);
  const fromURL = url.searchParams.get('token');
  let token = null;
  try {
    if (fromURL) sessionStorage.setItem(TOKEN_KEY, fromURL);
    token = fromURL || sessionStorage.getItem(TOKEN_KEY);
  } catch (e) {
    token = fromURL; // storage disabled: the token lives only in this page
  }
  if (fromURL) {
    url.searchParams.delete('token');
    history.replaceState(history.state, '', '/' + url.search + url.hash);
  }
  return token;
}

class ApiError extends Error {
  constructor(message, status, field = null) { super(message); this.status = status; this.field = field; }
}

function showBanner() { $('banner').hidden = false; }

function setBusy(delta) {
  state.inFlight += delta;
  $('busy').textContent = state.inFlight > 0 ? 'computing…' : '';
  document.body.classList.toggle('is-busy', state.inFlight > 0);
}

async function api(method, path, body) {
  if (!state.token) { showBanner(); throw new ApiError(NO_TOKEN, 403); }
  const headers = { Authorization: 'Bearer ' + state.token };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
  setBusy(1);
  try {
    let response;
    try { response = await fetch(path, init); } catch (e) {
      throw new ApiError(`could not reach the server (${e.message}); is backpack explore still running?`, 0);
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!response.ok) {
      if (response.status === 403) showBanner();
      const error = data && data.error;
      throw new ApiError(error ? error.message : `${response.status} ${response.statusText}`, response.status, error ? error.field : null);
    }
    return data;
  } finally {
    setBusy(-1);
  }
}

/** Errors are kept per source (predict, attribute, ...) so that one success does not hide another's failure. */
function reportError(source, error) {
  state.errors.set(source, { message: error.message || String(error), field: error.field || null });
  renderErrors();
}

function clearError(source) {
  if (state.errors.delete(source)) renderErrors();
}

function renderErrors() {
  const box = $('error');
  const messages = [...new Set([...state.errors.values()].map((e) => e.message))];
  box.replaceChildren(...messages.map((m) => el('div', { text: m })));
  box.hidden = messages.length === 0;
  // Point at the input the error is about, where there is one.
  document.querySelectorAll('.invalid').forEach((n) => n.classList.remove('invalid'));
  for (const { field } of state.errors.values()) {
    if (!field) continue;
    const match = /^interventions\[(\d+)\]/.exec(field);
    const target = field === 'text' ? $('text') : field === 'pair[0]' ? $('pair-a') : field === 'pair[1]' ? $('pair-b')
      : field === 'name' ? $('save-name') : match ? document.querySelector(`[data-item="${match[1]}"]`) : null;
    if (target) target.classList.add('invalid');
  }
}

/**
 * One request in flight per endpoint: a call while one runs only marks that another is wanted,
 * and the task reads the current state when it starts, so only the latest inputs are sent.
 */
function latestOnly(source, task) {
  let running = false;
  let wanted = false;
  async function pump() {
    running = true;
    while (wanted) {
      wanted = false;
      try {
        await task();
        clearError(source);
      } catch (e) {
        if (e instanceof ApiError && e.status === 503) { await sleep(1000); wanted = true; continue; } // server busy: retry
        reportError(source, e);
      }
    }
    running = false;
  }
  return () => { wanted = true; if (!running) pump(); };
}

// ---------------------------------------------------------------- interventions

function sliderKey(id, sense) { return `${id}:${sense}`; }

/** A slider as an edit-file intervention: by word when the token is ' ' + letters, else by token id. */
function sliderIntervention(s) {
  const item = { name: `'${s.text}' sense ${s.sense}` };
  if (/^ [A-Za-z]+$/.test(s.text)) item.words = [s.text.slice(1)];
  else item.tokens = [s.id];
  item.senses = [s.sense];
  item.scale = s.scale;
  return item;
}

/** What every request sends: switched-on edit files (in info order), then sliders (in the order added). */
function currentInterventions() {
  const list = [];
  for (const edit of (state.info ? state.info.edits : [])) {
    if (state.editsOn.has(edit.name)) list.push({ edit: edit.name });
  }
  for (const s of state.sliders.values()) list.push(sliderIntervention(s));
  return list;
}

function setScale(token, sense, scale) {
  const key = sliderKey(token.id, sense);
  if (scale === 1) state.sliders.delete(key);
  else if (state.sliders.has(key)) state.sliders.get(key).scale = scale;
  else state.sliders.set(key, { id: token.id, text: token.text, sense, scale });
}

// ---------------------------------------------------------------- requests

const predictRunner = latestOnly('predict', async () => {
  const text = $('text').value;
  const answer = await api('POST', '/api/predict', { text, top_k: TOP_K, interventions: currentInterventions() });
  state.prediction = answer;
  renderTokens();
  renderTops();
  renderApplied();
  followSelection();
});

const attributeRunner = latestOnly('attribute', async () => {
  const body = { text: $('text').value, pair: [$('pair-a').value.trim(), $('pair-b').value.trim()], interventions: currentInterventions() };
  const a = await api('POST', '/api/attribute', body);
  const toMatrix = (m) => m.map((row) => row.map(num));
  const edit = a.edits && a.edits.length ? a.edits[0] : null;
  state.attribution = {
    tokens: a.tokens, ids: a.ids, pair: a.pair,
    base: toMatrix(a.contributions), edited: edit ? toMatrix(edit.contributions) : toMatrix(a.contributions),
    baseDiff: num(a.logit_difference), editedDiff: edit ? num(edit.logit_difference) : num(a.logit_difference),
  };
  renderDiffs();
  renderHeatmap();
  updateSenseContributions();
  if (!state.userSelected && !state.selected) selectToken(strongestPosition(), false);
});

const sensesRunner = latestOnly('senses', async () => {
  const sel = state.selected;
  if (!sel) return;
  const data = await api('GET', `/api/senses?id=${encodeURIComponent(sel.id)}&top=${SENSE_TOP}`);
  if (!state.selected || state.selected.id !== sel.id) return; // a newer selection is queued
  state.senses = { token: { id: sel.id, text: sel.text }, data };
  renderSenses();
});

const refresh = debounce(() => { predictRunner(); attributeRunner(); });
const refreshAttribution = debounce(() => attributeRunner());

// ---------------------------------------------------------------- tokens and selection

/** The token at a position: from the last prediction, else from the last attribution. */
function tokenAt(index) {
  const p = state.prediction;
  if (p && p.tokens[index]) return { index, id: p.tokens[index].id, text: p.tokens[index].text };
  const a = state.attribution;
  if (a && index < a.ids.length) return { index, id: a.ids[index], text: a.tokens[index] };
  return null;
}

function selectToken(index, byUser = true) {
  const token = tokenAt(index);
  if (!token) return;
  if (byUser) state.userSelected = true;
  const same = state.selected && state.selected.id === token.id;
  state.selected = token;
  markSelection();
  if (same && state.senses && state.senses.token.id === token.id) { renderSenses(); return; }
  // Clear the old rows at once, so no slider of the previous token stays under the cursor.
  $('senses-title').textContent = 'loading…';
  $('senses-body').replaceChildren(el('div', { class: 'placeholder', text: 'Loading senses…' }));
  sensesRunner();
}

/** After the text changes, keep showing the same position if it still exists. */
function followSelection() {
  const sel = state.selected;
  if (!sel) return;
  const token = tokenAt(sel.index);
  if (!token) {
    state.selected = null;
    state.senses = null;
    $('senses-title').textContent = 'click a token to list its senses';
    $('senses-body').replaceChildren();
    markSelection();
  } else if (token.id !== sel.id) {
    selectToken(sel.index, false);
  } else {
    state.selected = token;
    markSelection();
  }
}

/** First view: the position whose senses move log p(A) − log p(B) the most. */
function strongestPosition() {
  const a = state.attribution;
  let best = 0;
  let bestValue = -1;
  a.tokens.forEach((_, j) => {
    const s = Math.abs(a.base.reduce((acc, row) => acc + row[j], 0));
    if (s > bestValue) { bestValue = s; best = j; }
  });
  return best;
}

function markSelection() {
  const index = state.selected ? state.selected.index : -1;
  document.querySelectorAll('#tokens .token').forEach((chip) => {
    chip.classList.toggle('selected', Number(chip.dataset.index) === index);
  });
  document.querySelectorAll('#heatmap [data-index]').forEach((cell) => {
    cell.classList.toggle('sel', Number(cell.dataset.index) === index);
  });
}

function renderTokens() {
  const chips = state.prediction.tokens.map((t, i) => el('button', {
    type: 'button', class: 'token', data: { index: String(i) }, title: `position ${i} · id ${t.id}`,
  }, tokenNode(t.text)));
  $('tokens').replaceChildren(...chips);
  markSelection();
}

// ---------------------------------------------------------------- next-token lists

function renderTops() {
  const p = state.prediction;
  const prob = (c) => Math.exp(num(c.logprob));
  const max = Math.max(...p.base.top.map(prob), ...p.edited.top.map(prob), 1e-12);
  const baseIds = new Map(p.base.top.map((c, i) => [c.id, i]));
  const list = (candidates, markChanges) => candidates.map((c, i) => {
    const pr = prob(c);
    const fill = el('span', { class: 'fill' });
    fill.style.width = `${Math.max(0.5, (pr / max) * 100)}%`;
    const moved = markChanges && baseIds.get(c.id) !== i;
    return el('li', { class: moved ? 'top-row moved' : 'top-row', title: `id ${c.id} · log p = ${signed(c.logprob)}` }, [
      el('span', { class: 'rank', text: String(i + 1) }),
      tokenNode(c.token, 'top-token'),
      el('span', { class: 'bar' }, fill),
      el('span', { class: 'prob', text: percent(pr) }),
    ]);
  });
  const edited = currentInterventions().length > 0;
  $('top-base').replaceChildren(...list(p.base.top, false));
  $('top-edited').replaceChildren(...list(p.edited.top, edited));
  $('edited-note').textContent = edited ? '' : '(none: same as base)';
}

function renderApplied() {
  const applied = state.prediction.applied || [];
  $('applied').replaceChildren(...(applied.length ? applied.map((s) => el('li', { text: s }))
    : [el('li', { class: 'placeholder', text: 'nothing applied' })]));
}

// ---------------------------------------------------------------- attribution

function renderDiffs() {
  const a = state.attribution;
  $('diff-base').textContent = signed(a.baseDiff);
  $('diff-edited').textContent = signed(a.editedDiff);
  $('diff-delta').textContent = signed(a.editedDiff - a.baseDiff);
}

function heatMode() {
  const checked = document.querySelector('input[name="heat"]:checked');
  return checked ? checked.value : 'base';
}

function maxAbs(matrix) {
  let m = 0;
  for (const row of matrix) for (const v of row) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m;
}

/** The shared colour scale: symmetric to the largest |c| of base and intervention together. */
function heatScale() {
  const a = state.attribution;
  return a ? Math.max(maxAbs(a.base), maxAbs(a.edited)) : 0;
}

function shownMatrix() {
  const a = state.attribution;
  const mode = heatMode();
  if (mode === 'edited') return a.edited;
  if (mode === 'diff') return a.edited.map((row, l) => row.map((v, j) => v - a.base[l][j]));
  return a.base;
}

/** Colour a sum by its sign, leaving values that print as 0.00 neutral. */
function signClass(v) { return v >= 0.005 ? 'pos' : v <= -0.005 ? 'neg' : ''; }

function renderHeatmap() {
  const a = state.attribution;
  const table = $('heatmap');
  if (!a) { table.replaceChildren(); return; }
  const m = shownMatrix();
  const max = heatScale();
  const n = a.tokens.length;
  const numbers = n <= 12; // print values only while the cells are wide enough to read
  table.classList.toggle('narrow', n > 16);
  $('legend-min').textContent = signed(-max, 2);
  $('legend-max').textContent = signed(max, 2);

  const head = el('tr', {}, el('th', { class: 'corner', text: 'sense' }));
  a.tokens.forEach((t, j) => head.append(el('th', {
    class: 'col-head', data: { index: String(j) }, title: `position ${j} · id ${a.ids[j]}`,
  }, tokenNode(t))));
  head.append(el('th', { class: 'sum-head', text: 'Σ', title: 'sum over positions' }));

  const rows = m.map((row, l) => {
    const tr = el('tr', {}, el('th', { class: 'row-head', text: String(l) }));
    row.forEach((v, j) => {
      const td = el('td', { class: 'cell', data: { index: String(j), sense: String(l) }, text: numbers ? v.toFixed(2) : '', title: cellText(j, l, v) });
      paint(td, v, max);
      tr.append(td);
    });
    const sum = row.reduce((acc, v) => acc + v, 0);
    tr.append(el('td', { class: `sum ${signClass(sum)}`, text: signed(sum, 2), title: `sense ${l}, all positions: ${signed(sum)}` }));
    return tr;
  });

  const foot = el('tr', { class: 'sums' }, el('th', { class: 'row-head', text: 'Σ', title: 'sum over senses' }));
  let total = 0;
  for (let j = 0; j < n; j++) {
    const s = m.reduce((acc, row) => acc + row[j], 0);
    total += s;
    foot.append(el('td', { class: `sum ${signClass(s)}`, data: { index: String(j) }, text: signed(s, 2), title: `'${a.tokens[j]}', all senses: ${signed(s)}` }));
  }
  foot.append(el('td', { class: 'sum total', text: signed(total, 2), title: `total: ${signed(total)}` }));

  table.replaceChildren(el('thead', {}, head), el('tbody', {}, rows), el('tfoot', {}, foot));
  markSelection();
}

function cellText(j, l, v) {
  const what = { base: 'base', edited: 'intervention', diff: 'intervention − base' }[heatMode()];
  return `'${state.attribution.tokens[j]}' (position ${j}) · sense ${l}: ${signed(v)} (${what})`;
}

/** Hover readout and click-to-select for the heatmap, delegated once instead of per cell. */
function onHeatHover(event) {
  const cell = event.target.closest('td.cell');
  if (cell && state.attribution) $('heat-readout').textContent = cell.title;
}

function onHeatClick(event) {
  const cell = event.target.closest('[data-index]');
  if (cell) selectToken(Number(cell.dataset.index));
}

// ---------------------------------------------------------------- senses panel

function wordList(items, cls) {
  return el('span', { class: `words ${cls}` }, items.map((w) => {
    const node = tokenNode(w.token, 'w');
    node.title = `'${w.token}' (id ${w.id}) score ${signed(w.score, 3)}`;
    return node;
  }));
}

function renderSenses() {
  const { token, data } = state.senses;
  const pos = state.selected ? state.selected.index : null;
  const title = $('senses-title');
  title.replaceChildren(tokenNode(token.text, 'tok strong'), ` id ${token.id}` + (pos !== null ? ` · position ${pos}` : ''));
  const header = el('div', { class: 'sense-row sense-head' }, [
    el('span', { class: 'sense-idx', text: '#' }), el('span', { text: 'base', title: `contribution to log p(A) − log p(B) at this position` }),
    el('span', { text: 'interv.' }), el('span', { text: 'promotes' }), el('span', { text: 'suppresses' }), el('span', { text: 'scale' }),
  ]);
  const rows = data.senses.map((s) => {
    const current = state.sliders.get(sliderKey(token.id, s.sense));
    const scale = current ? current.scale : 1;
    const slider = el('input', {
      type: 'range', min: '0', max: '2', step: '0.05', value: String(scale),
      class: 'sense-slider', data: { sense: String(s.sense) }, title: `scale sense ${s.sense} of '${token.text}'`,
    });
    return el('div', { class: scale === 1 ? 'sense-row' : 'sense-row scaled', data: { sense: String(s.sense) } }, [
      el('span', { class: 'sense-idx', text: String(s.sense) }),
      el('span', { class: 'contrib base-c', text: '—' }),
      el('span', { class: 'contrib edited-c', text: '—' }),
      wordList(s.promoted, 'promoted'),
      wordList(s.suppressed, 'suppressed'),
      el('span', { class: 'scale' }, [slider, el('output', { class: 'scale-value', text: '×' + scale.toFixed(2) })]),
    ]);
  });
  $('senses-body').replaceChildren(header, ...rows);
  updateSenseContributions();
}

/** contributions[l][j] of the selected position, updated in place so a slider being dragged is not rebuilt. */
function updateSenseContributions() {
  const a = state.attribution;
  const sel = state.selected;
  const ok = a && sel && sel.index < a.ids.length && a.ids[sel.index] === sel.id;
  const max = heatScale();
  document.querySelectorAll('#senses-body .sense-row[data-sense]').forEach((row) => {
    const l = Number(row.dataset.sense);
    for (const [cls, matrix] of [['.base-c', ok ? a.base : null], ['.edited-c', ok ? a.edited : null]]) {
      const cell = row.querySelector(cls);
      const v = matrix && matrix[l] ? matrix[l][sel.index] : null;
      cell.textContent = v === null ? '—' : signed(v, 3);
      if (v === null) { cell.style.backgroundColor = ''; cell.classList.remove('on-dark'); } else paint(cell, v, max);
    }
  });
}

function onSlider(event) {
  const input = event.target;
  if (!input.classList.contains('sense-slider') || !state.senses) return;
  const sense = Number(input.dataset.sense);
  const scale = Number(input.value);
  setScale(state.senses.token, sense, scale);
  const row = input.closest('.sense-row');
  row.classList.toggle('scaled', scale !== 1);
  row.querySelector('.scale-value').textContent = '×' + scale.toFixed(2);
  renderSliderList();
  refresh(SLIDER_DELAY);
}

// ---------------------------------------------------------------- interventions panel

function renderEditFiles() {
  const edits = state.info.edits;
  if (!edits.length) {
    $('edit-files').replaceChildren(el('div', { class: 'placeholder', text: 'No edit files loaded (start with --edit FILE to switch one on here).' }));
    return;
  }
  $('edit-files').replaceChildren(...edits.map((e) => el('label', { class: 'edit-file', title: e.file }, [
    el('input', { type: 'checkbox', class: 'edit-switch', data: { name: e.name }, checked: state.editsOn.has(e.name) }),
    el('span', { class: 'edit-text' }, [
      el('strong', { text: e.name }),
      e.description ? el('span', { class: 'muted', text: ' — ' + e.description }) : null,
      el('span', { class: 'summaries' }, e.interventions.map((s) => el('span', { class: 'summary', text: s }))),
    ]),
  ])));
  renderItemIndices();
}

function renderSliderList() {
  const items = [...state.sliders.entries()].map(([key, s]) => el('li', { class: 'slider-item' }, [
    el('span', { class: 'slider-name' }, [tokenNode(s.text, 'tok'), ` sense ${s.sense}`]),
    el('span', { class: 'slider-scale', text: '×' + s.scale.toFixed(2) }),
    el('button', { type: 'button', class: 'remove', text: '×', title: 'remove', 'aria-label': `remove '${s.text}' sense ${s.sense}`, onclick: () => removeSlider(key) }),
  ]));
  $('slider-list').replaceChildren(...(items.length ? items : [el('li', { class: 'placeholder', text: 'Move a sense slider to add one.' })]));
  renderItemIndices();
}

/** data-item = the index in `interventions` of each active item, so a server error can point at it. */
function renderItemIndices() {
  let i = 0;
  document.querySelectorAll('#edit-files .edit-file').forEach((label) => {
    const on = label.querySelector('.edit-switch').checked;
    if (on) label.dataset.item = String(i++); else delete label.dataset.item;
  });
  document.querySelectorAll('#slider-list .slider-item').forEach((li) => { li.dataset.item = String(i++); });
  $('intervention-count').textContent = i ? `(${i})` : '';
  renderErrors();
}

function removeSlider(key) {
  const s = state.sliders.get(key);
  state.sliders.delete(key);
  if (s && state.senses && state.senses.token.id === s.id) renderSenses();
  renderSliderList();
  refresh(0);
}

function reset() {
  state.sliders.clear();
  state.editsOn.clear();
  document.querySelectorAll('.edit-switch').forEach((box) => { box.checked = false; });
  if (state.senses) renderSenses();
  renderSliderList();
  refresh(0);
}

function onEditSwitch(event) {
  const box = event.target;
  if (!box.classList.contains('edit-switch')) return;
  if (box.checked) state.editsOn.add(box.dataset.name); else state.editsOn.delete(box.dataset.name);
  renderItemIndices();
  refresh(SLIDER_DELAY);
}

// ---------------------------------------------------------------- save

async function save() {
  const button = $('save');
  button.disabled = true;
  try {
    const name = $('save-name').value.trim() || 'explore-edit';
    const saved = await api('POST', '/api/edit-file', { interventions: currentInterventions(), name, save: true });
    clearError('save');
    showSaved(saved);
  } catch (e) {
    reportError('save', e);
  } finally {
    button.disabled = false;
  }
}

function showSaved(saved) {
  if (state.downloadURL) URL.revokeObjectURL(state.downloadURL);
  state.downloadURL = URL.createObjectURL(new Blob([saved.yaml], { type: 'application/yaml' }));
  const link = $('download');
  link.href = state.downloadURL;
  link.download = saved.file_name;
  link.textContent = `Download ${saved.file_name}`;
  link.hidden = false;
  $('saved-path').textContent = saved.path ? `written to ${saved.path}` : 'not written (preview only)';
  const preview = $('yaml-preview');
  preview.textContent = saved.yaml;
  preview.hidden = false;
}

// ---------------------------------------------------------------- evaluate

function renderSuites() {
  const suites = state.info.suites;
  if (!suites.length) {
    $('suites').replaceChildren(el('span', { class: 'placeholder', text: 'No evaluation suites found.' }));
    $('evaluate').disabled = true;
    return;
  }
  $('suites').replaceChildren(...suites.map((s) => el('label', { class: 'suite' }, [
    el('input', { type: 'checkbox', class: 'suite-choice', value: s, checked: s === 'pronoun-bias' }), ' ' + s,
  ])));
}

async function evaluate() {
  const button = $('evaluate');
  const suites = [...document.querySelectorAll('.suite-choice:checked')].map((box) => box.value);
  const old = $('eval-results');
  if (old) old.remove();
  $('eval-output').replaceChildren();
  $('eval-progress').textContent = '';
  button.disabled = true;
  $('eval-status').textContent = 'starting…';
  try {
    const name = $('save-name').value.trim() || 'explore';
    const started = await api('POST', '/api/evaluate', { suites, interventions: currentInterventions(), name });
    clearError('evaluate');
    $('eval-status').textContent = `${started.state} · ${started.id}`;
    showEvaluation(await followEvaluation(started.id));
  } catch (e) {
    $('eval-status').textContent = 'failed';
    reportError('evaluate', e);
  } finally {
    button.disabled = false;
  }
}

function appendProgress(line) {
  const pre = $('eval-progress');
  pre.textContent += (pre.textContent ? '\n' : '') + line;
  pre.scrollTop = pre.scrollHeight;
  $('eval-status').textContent = 'running…';
}

/** Stream the events; if that fails (or ends early), fall back to polling the status. */
async function followEvaluation(id) {
  try {
    const final = await streamEvents(id);
    if (final) return final;
  } catch (e) {
    // fall through: polling reads the same status
  }
  return pollEvaluation(id);
}

/** EventSource cannot send the Authorization header, so read text/event-stream with fetch. */
async function streamEvents(id) {
  const response = await fetch(`/api/evaluations/${encodeURIComponent(id)}/events`, {
    headers: { Authorization: 'Bearer ' + state.token }, cache: 'no-store',
  });
  if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return null;
    buffer += decoder.decode(value, { stream: true }).replace(/\r/g, '');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event.type === 'progress') appendProgress(event.data);
      else if (event.type === 'done' || event.type === 'failed') { reader.cancel().catch(() => {}); return JSON.parse(event.data); }
    }
  }
}

function parseEvent(block) {
  const event = { type: 'message', data: '' };
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event.type = value;
    else if (field === 'data') data.push(value);
  }
  event.data = data.join('\n');
  return event;
}

async function pollEvaluation(id) {
  for (;;) {
    const status = await api('GET', `/api/evaluations/${encodeURIComponent(id)}`);
    $('eval-progress').textContent = (status.progress || []).join('\n');
    if (status.state === 'done' || status.state === 'failed') return status;
    $('eval-status').textContent = `${status.state}…`;
    await sleep(1000);
  }
}

function showEvaluation(status) {
  if (status.state === 'failed') {
    $('eval-status').textContent = 'failed';
    $('eval-output').replaceChildren(el('div', { class: 'error inline', text: status.error || 'the evaluation failed' }));
    return;
  }
  $('eval-status').textContent = 'done';
  const ci = (pair) => (pair && pair.length === 2 ? el('span', { class: 'ci', text: ` [${sig4(pair[0])}, ${sig4(pair[1])}]` }) : null);
  const value = (v, pair) => el('td', { class: 'numeric' }, [sig4(v), ci(pair)]);
  const pCell = (p) => {
    const v = num(p);
    return el('td', { class: 'numeric' }, v !== null && v < 0.05 ? el('strong', { text: sig4(v) }) : sig4(v));
  };
  const arrow = { lower: ' ↓', higher: ' ↑' };
  const rows = (status.metrics || []).map((m) => el('tr', { title: m.description }, [
    el('td', { text: m.suite }),
    el('td', {}, [m.metric, el('span', { class: 'muted', text: (arrow[m.better] || '') + (m.unit ? ` ${m.unit}` : ''), title: `${m.better} is better` })]),
    value(m.base, m.base_ci), value(m.edited, m.edited_ci), value(m.diff, m.diff_ci),
    pCell(m.p), el('td', { class: 'numeric', text: sig4(m.q) }),
  ]));
  const head = el('tr', {}, ['suite', 'metric', 'base [CI]', 'intervention [CI]', 'Δ [CI]', 'p', 'q']
    .map((h, i) => el('th', { class: i >= 2 ? 'numeric' : '', text: h })));
  const table = el('table', { id: 'eval-results', class: 'eval-results' }, [el('thead', {}, head), el('tbody', {}, rows)]);
  const run = el('div', { id: 'eval-run', class: 'eval-run' },
    status.run ? `run ${status.run} · stored in ${status.out || state.info.results_file}` : 'not stored');
  $('eval-output').replaceChildren(el('div', { class: 'table-wrap' }, table), run);
}

// ---------------------------------------------------------------- start

function renderInfo() {
  const { model } = state.info;
  $('model-path').textContent = model.path;
  $('model-path').title = model.path;
  $('model-meta').textContent = [model.architecture, `${model.senses} senses`, `vocab ${model.vocab_size}`,
    `d ${model.n_embd}`, `${model.n_positions} positions`].join(' · ');
  renderEditFiles();
  renderSuites();
}

function wire() {
  $('text').addEventListener('input', () => refresh(TEXT_DELAY));
  $('pair-a').addEventListener('input', () => refreshAttribution(TEXT_DELAY));
  $('pair-b').addEventListener('input', () => refreshAttribution(TEXT_DELAY));
  $('tokens').addEventListener('click', (e) => {
    const chip = e.target.closest('.token');
    if (chip) selectToken(Number(chip.dataset.index));
  });
  const heat = $('heatmap');
  heat.addEventListener('mouseover', onHeatHover);
  heat.addEventListener('click', onHeatClick);
  document.querySelectorAll('input[name="heat"]').forEach((r) => r.addEventListener('change', renderHeatmap));
  $('senses-body').addEventListener('input', onSlider);
  $('senses-body').addEventListener('change', onSlider);
  $('edit-files').addEventListener('change', onEditSwitch);
  $('reset').addEventListener('click', reset);
  $('save').addEventListener('click', save);
  $('evaluate').addEventListener('click', evaluate);
}

async function start() {
  wire();
  renderSliderList();
  state.token = readToken();
  if (!state.token) { showBanner(); $('model-path').textContent = 'no access token'; return; }
  try {
    state.info = await api('GET', '/api/info');
    clearError('info');
  } catch (e) {
    $('model-path').textContent = 'model info unavailable';
    reportError('info', e);
    return;
  }
  renderInfo();
  refresh(0);
}

document.addEventListener('DOMContentLoaded', start);
