// log.js is the run page: step logs opened as a window of their last
// lines (more on demand), the live log over Server-Sent Events, line
// anchors, timestamps, auto-scroll, and the run's state in the header,
// title and favicon, all without reloading.
'use strict';
(() => {
  const root = document.getElementById('run');
  if (!root) return;
  const base = `/ui/repos/${encodeURIComponent(root.dataset.repo)}/runs/${encodeURIComponent(root.dataset.run)}`;
  const DONE = s => s === 'completed' || s === 'failed' || s === 'cancelled';
  const ICONS = { queued: '○', planned: '○', running: '◔', completed: '✓', success: '✓', failed: '✗', cancelled: '⊘', skipped: '↷' };
  let status = root.dataset.status;
  let follow = !DONE(status);
  let showTimes = false;
  let events = null;
  const views = new Map();
  const LIVE_MAX = 3000, LIVE_KEEP = 2000, LIVE_HARD = 20000;

  for (const el of document.querySelectorAll('.js-only')) el.hidden = false;
  const followBtn = document.getElementById('follow');
  const timesBtn = document.getElementById('toggle-times');

  function setStatus(el, st) {
    el.className = `status s-${st}`;
    el.querySelector('.icon').textContent = ICONS[st] || '•';
    el.querySelector('.word').textContent = st;
  }

  function fmtDur(ms) {
    if (!ms || ms <= 0) return '—';
    if (ms < 1000) return `${ms} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
    if (ms < 3600000) return `${Math.floor(ms / 60000)}m ${String(Math.floor(ms / 1000) % 60).padStart(2, '0')}s`;
    return `${Math.floor(ms / 3600000)}h ${String(Math.floor(ms / 60000) % 60).padStart(2, '0')}m`;
  }

  // ---- one step's log ----
  class LogView {
    constructor(li) {
      this.li = li;
      this.index = Number(li.dataset.step);
      this.id = li.id.replace(/^step-/, '');
      this.box = li.querySelector('.log');
      for (const f of this.box.querySelectorAll('.fallback')) f.remove();
      this.lines = document.createElement('div');
      this.lines.className = 'lines';
      // A region, not role=log: a screen reader must not read out every
      // line of a busy step; the step's status is announced instead.
      this.lines.setAttribute('role', 'region');
      this.lines.setAttribute('aria-label', `Log of ${li.dataset.name}`);
      this.box.appendChild(this.lines);
      const raw = document.createElement('p');
      raw.className = 'steplink';
      const a = document.createElement('a');
      a.href = `${base}/log?step=${encodeURIComponent(li.dataset.param || li.dataset.name)}`;
      a.textContent = `⤓ Raw log of ${li.dataset.name}`;
      a.setAttribute('download', '');
      raw.appendChild(a);
      this.box.appendChild(raw);
      this.state = {};       // SGR state carried from line to line
      this.next = 1;         // number of the next line
      this.start = 0;        // offset of the first line shown
      this.end = 0;          // offset after the last complete line shown
      this.loaded = false;
      this.base = [];        // runs of the open line, from "\r"-ended segments
      this.raw = '';         // partial segment received so far
      this.openRow = null;
      this.earlier = null;   // "load earlier" control
      this.later = null;     // "load later" control (deep link windows)
      this.tailed = true;    // the view reaches the end of the log
    }

    row(n, runs, time) {
      const div = document.createElement('div');
      div.className = 'l';
      if (n) this.number(div, n);
      const ts = document.createElement('span');
      ts.className = 'ts';
      if (time) { ts.textContent = time.toISOString().slice(11, 19); ts.title = time.toISOString(); }
      div.appendChild(ts);
      const t = document.createElement('span');
      t.className = 't';
      KodAnsi.render(t, runs);
      div.appendChild(t);
      return div;
    }

    number(div, n) {
      div.id = `step-${this.id}-L${n}`;
      const a = document.createElement('a');
      a.className = 'n';
      a.href = `#${div.id}`;
      a.textContent = n;
      a.setAttribute('aria-label', `Line ${n}`);
      div.insertBefore(a, div.firstChild);
    }

    // rows builds the rows of a window's segments, numbered from first.
    rows(win) {
      const frag = document.createDocumentFragment();
      const st = {};
      let cur = [], n = win.first, k = 0;
      for (const seg of win.segments) {
        const p = KodAnsi.parse(seg.t, st);
        cur = KodAnsi.overwrite(cur, p.runs, p.erase);
        if (seg.cr) continue;
        const row = this.row(n++, cur);
        row.dataset.off = win.starts[k++];
        frag.appendChild(row);
        cur = [];
      }
      return { frag, st, n };
    }

    async fetch(query) {
      const res = await fetch(`${base}/steps/${this.index}/lines${query}`, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error(res.status === 401 ? 'Signed out: sign in again to see this log.' : `Loading the log failed (${res.status}).`);
      return res.json();
    }

    fail(err) {
      const p = document.createElement('p');
      p.className = 'error';
      p.setAttribute('role', 'alert');
      p.textContent = err.message;
      this.box.insertBefore(p, this.lines);
    }

    // load shows the last lines of the step (or the window holding line).
    async load(line) {
      if (this.loaded) return;
      this.loaded = true;
      const t0 = performance.now();
      let win;
      try {
        win = await this.fetch(line ? `?line=${line}` : '');
      } catch (e) { this.fail(e); return; }
      const r = this.rows(win);
      this.lines.appendChild(r.frag);
      this.state = r.st;
      this.next = win.first ? r.n : win.total + 1;
      this.start = win.start;
      this.end = win.end;
      this.tailed = !win.more;
      this.controls(win);
      void this.lines.offsetHeight; // the layout is part of opening
      this.li.dataset.loaded = 'true';
      this.li.dataset.loadMs = String(Math.round(performance.now() - t0));
      this.li.dataset.rendered = String(this.lines.childElementCount);
    }

    controls(win) {
      const first = win.first || this.next;
      if (first > 1 && !this.earlier) {
        this.earlier = document.createElement('button');
        this.earlier.type = 'button';
        this.earlier.className = 'earlier';
        this.earlier.addEventListener('click', () => this.loadEarlier());
        this.box.insertBefore(this.earlier, this.lines);
      }
      if (this.earlier) {
        const n = (Number(this.lines.firstElementChild?.querySelector('.n')?.textContent) || first) - 1;
        if (n <= 0) { this.earlier.remove(); this.earlier = null; }
        else this.earlier.textContent = `↑ Load earlier lines (${n} more)`;
      }
      if (win.more && !this.later) {
        this.later = document.createElement('button');
        this.later.type = 'button';
        this.later.className = 'later';
        this.later.textContent = '↓ Load later lines';
        this.later.addEventListener('click', () => this.loadLater());
        this.lines.after(this.later);
      }
    }

    async loadEarlier() {
      const btn = this.earlier;
      btn.disabled = true;
      let win;
      try { win = await this.fetch(`?before=${this.start}`); } catch (e) { btn.disabled = false; this.fail(e); return; }
      const anchor = this.lines.firstElementChild;
      const y = anchor ? anchor.getBoundingClientRect().top : 0;
      const r = this.rows(win);
      this.lines.insertBefore(r.frag, this.lines.firstChild);
      this.start = win.start;
      if (anchor) window.scrollBy(0, anchor.getBoundingClientRect().top - y); // keep what was on screen in place
      btn.disabled = false;
      this.controls(win);
      btn.focus();
    }

    async loadLater() {
      let win;
      try { win = await this.fetch(`?after=${this.end}`); } catch (e) { this.fail(e); return; }
      const r = this.rows(win);
      this.lines.appendChild(r.frag);
      this.state = r.st;
      this.next = r.n;
      this.end = win.end;
      if (!win.more) { this.later.remove(); this.later = null; this.tailed = true; }
    }

    // live adds one line event of the stream; off is the offset after it
    // (from the event id).
    live(d, off) {
      // Not loaded: opening it fetches a window with these lines. A
      // deep-link window: "load later" fetches the rest.
      if (!this.loaded || !this.tailed) return;
      const raw = this.raw + d.line;
      if (d.partial) {
        this.raw = raw;
        this.show(KodAnsi.overwrite(this.base, KodAnsi.parse(raw, Object.assign({}, this.state)).runs), false);
        return;
      }
      this.raw = '';
      const p = KodAnsi.parse(raw, this.state);
      const runs = KodAnsi.overwrite(this.base, p.runs, p.erase);
      if (d.cr) { this.base = runs; this.show(runs, false); return; }
      this.base = [];
      const row = this.show(runs, true);
      row.dataset.off = this.end;
      if (off >= 0) this.end = off;
      this.trim();
    }

    show(runs, done) {
      const row = this.row(done ? this.next : 0, runs, new Date());
      if (this.openRow) this.lines.replaceChild(row, this.openRow); else this.lines.appendChild(row);
      if (done) { this.next++; this.openRow = null; } else { row.classList.add('open'); this.openRow = row; }
      scrollSoon();
      return row;
    }

    // trim keeps a live log bounded: while followed, at most LIVE_MAX
    // rows (the oldest go; "load earlier" brings them back on demand);
    // while the reader is scrolled up, past LIVE_HARD rows the ones above
    // the screen go, and the view is held still. A step printing without
    // end never grows the page without bound.
    trim() {
      const count = this.lines.childElementCount;
      if (count <= LIVE_MAX || (!follow && count <= LIVE_HARD)) return;
      let drop = count - LIVE_KEEP;
      if (!follow) {
        let above = 0;
        for (let r = this.lines.firstElementChild; r && above < drop && r.getBoundingClientRect().bottom < 0; r = r.nextElementSibling) above++;
        drop = above;
        if (drop === 0) return;
      }
      const keep = this.lines.children[drop];
      const y = keep.getBoundingClientRect().top;
      for (let i = 0; i < drop; i++) this.lines.firstElementChild.remove();
      this.start = Number(keep.dataset.off);
      this.controls({ first: Number(keep.querySelector('.n')?.textContent) || this.next });
      if (!follow) window.scrollBy(0, keep.getBoundingClientRect().top - y);
      // The page got shorter: the browser may move the view up to fit. That
      // is not the reader scrolling up (which stops following).
      else lastY = window.scrollY;
    }
  }

  function viewOf(li) {
    let v = views.get(li);
    if (!v) { v = new LogView(li); views.set(li, v); }
    return v;
  }

  // ---- steps ----
  function stepLi(index) { return root.querySelector(`li.step[data-step="${index}"]`); }

  // ensureStep returns the step's element, adding it (a step the stream
  // announced) when the page does not have it yet.
  // live says its output comes over the stream from its first byte (a
  // step the stream announced, or one running now); other steps load
  // their window when opened.
  function ensureStep(d, st, live) {
    let li = stepLi(d.index);
    if (li) return li;
    document.getElementById('no-steps')?.remove();
    const groups = document.getElementById('groups');
    let group = [...groups.querySelectorAll('.group')].pop();
    // A line event does not name the workflow: such a step joins the last group.
    if (!group || (d.workflow !== undefined && group.dataset.workflow !== (d.workflow || ''))) {
      group = document.createElement('div');
      group.className = 'group';
      group.dataset.workflow = d.workflow || '';
      if (d.workflow) { const h = document.createElement('h2'); h.className = 'wf'; h.textContent = d.workflow; group.appendChild(h); }
      const ol = document.createElement('ol'); ol.className = 'step-list'; group.appendChild(ol);
      groups.appendChild(group);
    }
    li = document.createElement('li');
    li.className = 'step';
    li.id = `step-${d.index}`;
    li.dataset.step = d.index;
    if (d.id) li.dataset.id = d.id;
    li.dataset.param = d.id || d.step;
    li.dataset.name = d.step;
    li.dataset.status = st;
    const det = document.createElement('details');
    det.open = live;
    const sum = document.createElement('summary');
    const badge = document.createElement('span');
    badge.innerHTML = '<span aria-hidden="true" class="icon"></span> <span class="word"></span>'; // fixed markup, no data
    setStatus(badge, st);
    const name = document.createElement('span'); name.className = 'name'; name.textContent = d.step;
    const dur = document.createElement('span'); dur.className = 'dur';
    sum.append(badge, ' ', name, ' ', dur);
    const box = document.createElement('div'); box.className = 'log'; box.dataset.step = d.index;
    det.append(sum, box);
    li.appendChild(det);
    group.querySelector('ol').appendChild(li);
    if (live) {
      viewOf(li).loaded = true;
      li.dataset.loaded = 'true';
    }
    watch(li);
    return li;
  }

  function watch(li) {
    const det = li.querySelector('details');
    det.addEventListener('toggle', () => { if (det.open) viewOf(li).load(); });
  }

  // ---- the run's state ----
  let asked = 0, applied = 0;
  async function refresh() {
    const n = ++asked;
    let v;
    try {
      const res = await fetch(`${base}/run.json`, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      if (res.status === 401) { signedOut(); return; }
      if (!res.ok) return;
      v = await res.json();
    } catch { return; }
    // Answers can cross: an older one must not undo a newer one, and a
    // finished run never goes back.
    if (n < applied || (DONE(status) && !DONE(v.run.status))) return;
    applied = n;
    const run = v.run;
    status = run.status;
    root.dataset.status = status;
    setStatus(document.getElementById('run-status'), status);
    document.getElementById('favicon').href = v.favicon;
    document.title = document.title.replace(/^\S+ \S+/, `${ICONS[status] || '•'} ${status}`);
    document.getElementById('run-duration').textContent = fmtDur(v.duration);
    const q = document.getElementById('run-queue');
    if (q && !run.queuePosition) q.remove();
    for (const st of v.steps || []) {
      const li = ensureStep({ index: st.index, id: st.id, step: st.name, workflow: st.workflow }, st.status, st.status === 'running');
      li.dataset.status = st.status;
      setStatus(li.querySelector('summary .status') || li.querySelector('summary span'), st.status);
      li.querySelector('.dur').textContent = fmtDur(st.duration);
      const node = root.querySelector(`.graph a[data-node="${CSS.escape(st.id)}"] .status`);
      if (node) setStatus(node, st.status);
    }
    if (run.error && !document.getElementById('run-error')) {
      const p = document.createElement('p');
      p.className = 'error'; p.id = 'run-error'; p.setAttribute('role', 'alert'); p.textContent = run.error;
      root.querySelector('.run-head .actions').before(p);
    }
    if (DONE(status)) {
      document.getElementById('cancel-form')?.remove();
      if (followBtn) followBtn.hidden = true;
      if (v.canRerun && !document.getElementById('rerun-form')) addRerun();
    }
  }

  function addRerun() {
    const csrf = document.querySelector('input[name=csrf]');
    if (!csrf) return;
    const f = document.createElement('form');
    f.method = 'post'; f.action = `${base}/rerun`; f.id = 'rerun-form';
    const i = document.createElement('input'); i.type = 'hidden'; i.name = 'csrf'; i.value = csrf.value;
    const b = document.createElement('button'); b.type = 'submit'; b.id = 'rerun'; b.textContent = '↻ Re-run';
    f.append(i, b);
    root.querySelector('.run-head .actions').prepend(f);
  }

  function signedOut() {
    if (events) events.close();
    if (document.getElementById('signed-out')) return;
    const p = document.createElement('p');
    p.id = 'signed-out'; p.className = 'error'; p.setAttribute('role', 'alert');
    p.textContent = 'Your session ended. Sign in again to keep watching this run.';
    root.prepend(p);
  }

  // ---- the live stream ----
  function connect(from) {
    const url = `${base}/events${from ? `?from=${encodeURIComponent(from)}` : ''}`;
    events = new EventSource(url);
    events.addEventListener('step', e => {
      const d = JSON.parse(e.data);
      const li = ensureStep(d, d.skipped ? 'skipped' : (d.status || 'running'), true);
      const v = viewOf(li);
      if (!v.loaded && v.lines.childElementCount === 0) {
        v.loaded = true; v.tailed = true; li.dataset.loaded = 'true';
        // A planned step that starts opens, as a step announced by the
        // stream always did.
        if (!d.skipped && !d.status) li.querySelector('details').open = true;
      }
      refresh();
    });
    events.addEventListener('line', e => {
      const d = JSON.parse(e.data);
      const li = ensureStep(d, 'running', true);
      // The id is a cursor: this step's "index:offset" first, then the
      // other steps' positions (steps running at once).
      const off = parseInt((e.lastEventId || '').split(',')[0].split(':')[1], 10);
      viewOf(li).live(d, Number.isFinite(off) ? off : -1);
    });
    events.addEventListener('end', () => { events.close(); refresh(); });
    events.addEventListener('error', () => {
      if (events.readyState === EventSource.CLOSED) refresh(); // a 401/204: see why
    });
  }

  // ---- scrolling ----
  let scrollPending = false;
  function nearBottom() { return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 48; }
  function scrollSoon() {
    if (!follow || scrollPending) return;
    scrollPending = true;
    requestAnimationFrame(() => {
      scrollPending = false;
      if (follow) window.scrollTo(0, document.documentElement.scrollHeight);
    });
  }
  let lastY = window.scrollY;
  window.addEventListener('scroll', () => {
    const up = window.scrollY < lastY;
    lastY = window.scrollY;
    if (up && !nearBottom()) setFollow(false);
    else if (nearBottom() && !DONE(status)) setFollow(true);
  }, { passive: true });
  function setFollow(on) {
    follow = on;
    root.dataset.follow = on ? 'true' : 'false';
    followBtn?.setAttribute('aria-pressed', on ? 'true' : 'false');
  }
  followBtn?.addEventListener('click', () => { setFollow(!follow); scrollSoon(); });
  if (DONE(status) && followBtn) followBtn.hidden = true;
  timesBtn?.addEventListener('click', () => {
    showTimes = !showTimes;
    root.classList.toggle('show-ts', showTimes);
    timesBtn.setAttribute('aria-pressed', showTimes ? 'true' : 'false');
  });

  // ---- deep links ----
  function highlight() {
    const m = /^#step-(.+)-L(\d+)$/.exec(location.hash);
    if (!m) return null;
    for (const el of root.querySelectorAll('.l.hl')) el.classList.remove('hl');
    const el = document.getElementById(location.hash.slice(1));
    if (!el) return m;
    el.classList.add('hl');
    setFollow(false);
    el.scrollIntoView({ block: 'center' });
    return null;
  }
  window.addEventListener('hashchange', highlight);

  // cursor is where the live stream starts: every step below the first
  // one that has not ended on the page was shown whole; each step whose
  // log window reaches its end resumes there; every other step comes
  // from its start (steps run at once, so there is no single position).
  function cursor() {
    const ENDED = s => s === 'success' || s === 'failed' || s === 'skipped' || s === 'cancelled';
    const lis = [...root.querySelectorAll('li.step')].sort((a, b) => Number(a.dataset.step) - Number(b.dataset.step));
    let below = 0;
    for (const li of lis) {
      if (Number(li.dataset.step) !== below || !ENDED(li.dataset.status)) break;
      below++;
    }
    const at = [];
    for (const li of lis) {
      const v = views.get(li);
      if (Number(li.dataset.step) >= below && v && v.loaded && v.tailed) at.push(`${li.dataset.step}:${v.end}`);
    }
    if (!at.length && !below) return '';
    return [...at, `<${below}`].join(',');
  }

  // ---- start ----
  async function start() {
    for (const li of root.querySelectorAll('li.step')) watch(li);
    const link = /^#step-(.+)-L(\d+)$/.exec(location.hash);
    const linked = link ? document.getElementById(`step-${link[1]}`) : null;
    const running = [...root.querySelectorAll('li.step[data-status="running"]')].pop();
    const loads = [];
    for (const li of root.querySelectorAll('li.step')) {
      const det = li.querySelector('details');
      if (li === linked) {
        det.open = true;
        const v = viewOf(li);
        if (li === running) {
          loads.push(v.load().then(async () => {
            while (v.earlier && Number(link[2]) < v.next && !document.getElementById(location.hash.slice(1))) await v.loadEarlier();
          }));
        } else loads.push(v.load(Number(link[2])));
      } else if (det.open) loads.push(viewOf(li).load());
    }
    await Promise.all(loads);
    if (link) highlight();
    if (!DONE(status)) {
      connect(cursor());
      setInterval(() => { if (!DONE(status)) refresh(); }, 3000);
      if (!link) { setFollow(true); scrollSoon(); }
    } else setFollow(false);
    root.dataset.ready = 'true';
    root.dataset.readyMs = String(Math.round(performance.now()));
  }
  start();
})();
