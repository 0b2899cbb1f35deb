// app.js: small helpers of every page (copy buttons, live relative times).
'use strict';
(() => {
  for (const el of document.querySelectorAll('.js-only')) el.hidden = false;
  for (const btn of document.querySelectorAll('button.copy')) {
    btn.addEventListener('click', async () => {
      const input = document.getElementById(btn.dataset.copy);
      if (!input) return;
      try { await navigator.clipboard.writeText(input.value); } catch { input.select(); document.execCommand('copy'); }
      const old = btn.textContent;
      btn.textContent = 'Copied ✓';
      setTimeout(() => { btn.textContent = old; }, 1500);
    });
  }
  const ago = ms => {
    const s = Math.max(0, Math.floor((Date.now() - ms) / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 172800) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} days ago`;
  };
  setInterval(() => {
    for (const t of document.querySelectorAll('time[datetime]')) {
      const ms = Date.parse(t.getAttribute('datetime'));
      if (!Number.isNaN(ms)) t.textContent = ago(ms);
    }
  }, 30000);
})();
