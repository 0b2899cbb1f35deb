// ansi.js turns terminal output into DOM nodes: SGR colours and styles
// become classes (or, for 256/24-bit colours, CSSOM colours), every other
// escape or control character is dropped, and text only ever goes in
// through textContent: nothing a step prints can become markup.
'use strict';
const KodAnsi = (() => {
  const ESC = /\x1b\[([0-9;:?<=>]*)[ -\/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[()*+#%][0-9A-Za-z@]|\x1b[@-Z\\-_]?|[\x00-\x08\x0b-\x1f\x7f]/g;

  function copy(st) { return Object.assign({}, st); }

  function xterm(n) {
    if (n < 16) return null;
    if (n >= 232) { const v = 8 + (n - 232) * 10; return `rgb(${v},${v},${v})`; }
    n -= 16;
    const c = v => (v === 0 ? 0 : 55 + v * 40);
    return `rgb(${c(Math.floor(n / 36))},${c(Math.floor(n / 6) % 6)},${c(n % 6)})`;
  }

  function sgr(st, params) {
    const p = params === '' ? [0] : params.split(/[;:]/).map(x => (x === '' ? 0 : parseInt(x, 10)));
    for (let i = 0; i < p.length; i++) {
      const c = p[i];
      if (c === 0) { for (const k of Object.keys(st)) delete st[k]; }
      else if (c === 1) st.b = true;
      else if (c === 2) st.d = true;
      else if (c === 3) st.i = true;
      else if (c === 4) st.u = true;
      else if (c === 7) st.inv = true;
      else if (c === 9) st.s = true;
      else if (c === 22) { delete st.b; delete st.d; }
      else if (c === 23) delete st.i;
      else if (c === 24) delete st.u;
      else if (c === 27) delete st.inv;
      else if (c === 29) delete st.s;
      else if (c >= 30 && c <= 37) st.fg = c - 30;
      else if (c >= 90 && c <= 97) st.fg = c - 90 + 8;
      else if (c === 39) delete st.fg;
      else if (c >= 40 && c <= 47) st.bg = c - 40;
      else if (c >= 100 && c <= 107) st.bg = c - 100 + 8;
      else if (c === 49) delete st.bg;
      else if ((c === 38 || c === 48) && p[i + 1] === 5) {
        const n = p[i + 2] | 0; i += 2;
        st[c === 38 ? 'fg' : 'bg'] = n < 16 ? n : xterm(Math.min(n, 255));
      } else if ((c === 38 || c === 48) && p[i + 1] === 2) {
        const [r, g, b] = [p[i + 2] | 0, p[i + 3] | 0, p[i + 4] | 0].map(v => Math.max(0, Math.min(255, v)));
        i += 4;
        st[c === 38 ? 'fg' : 'bg'] = `rgb(${r},${g},${b})`;
      }
    }
  }

  // parse returns the styled runs of text ([{t, s}]) and whether it
  // erased the rest of the line (ESC[K); st is the SGR state, updated.
  function parse(text, st) {
    const runs = [];
    let erase = false, last = 0, m;
    const push = t => { if (t) runs.push({ t, s: copy(st) }); };
    ESC.lastIndex = 0;
    while ((m = ESC.exec(text)) !== null) {
      push(text.slice(last, m.index));
      last = ESC.lastIndex;
      if (m[2] === 'm') sgr(st, m[1]);
      else if (m[2] === 'K') erase = true;
      if (m[0] === '') ESC.lastIndex++;
    }
    push(text.slice(last));
    return { runs, erase };
  }

  function length(runs) { return runs.reduce((n, r) => n + r.t.length, 0); }

  // overwrite writes top over base from column 0, as a terminal does
  // after a lone "\r": what base has beyond top stays unless top erased it.
  function overwrite(base, top, erase) {
    if (erase || base.length === 0) return top;
    const from = length(top);
    const out = top.slice();
    let pos = 0;
    for (const r of base) {
      const end = pos + r.t.length;
      if (end > from) out.push({ t: r.t.slice(Math.max(0, from - pos)), s: r.s });
      pos = end;
    }
    return out;
  }

  // render appends runs to el as spans.
  function render(el, runs) {
    for (const r of runs) {
      const s = r.s;
      if (!s || Object.keys(s).length === 0) { el.appendChild(document.createTextNode(r.t)); continue; }
      const span = document.createElement('span');
      span.textContent = r.t;
      let fg = s.fg, bg = s.bg;
      if (s.inv) { [fg, bg] = [bg === undefined ? 'inv-fg' : bg, fg === undefined ? 'inv-bg' : fg]; }
      const cls = [];
      if (s.b) cls.push('a-b');
      if (s.d) cls.push('a-d');
      if (s.i) cls.push('a-i');
      if (s.u) cls.push('a-u');
      if (s.s) cls.push('a-s');
      if (typeof fg === 'number') cls.push('f' + fg); else if (fg === 'inv-fg') cls.push('f-inv'); else if (fg) span.style.color = fg;
      if (typeof bg === 'number') cls.push('b' + bg); else if (bg === 'inv-bg') cls.push('b-inv'); else if (bg) span.style.backgroundColor = bg;
      span.className = cls.join(' ');
      el.appendChild(span);
    }
  }

  return { parse, overwrite, render };
})();
