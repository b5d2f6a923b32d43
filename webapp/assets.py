"""The page's CSS and the small script it needs (passed to ``launch``).

Colours are set for both themes (Gradio adds ``.dark`` above the app in dark mode): every
text/background pair, highlights included, has a contrast of at least 4.5:1. On a narrow
screen the conversation is shorter, so the question box is on screen without scrolling.

The script handles three clicks the sanitised chat HTML cannot: a ``[n]`` of a paper without
a page scrolls to (and flashes) its card in the sources panel, or its entry in the answer's
reference list; "Copy" puts the answer's Markdown (kept in a hidden element's title) on the
clipboard. It also opens the conversation list on wide screens (it stays closed on a phone).
"""

CSS = """
.pc-badge {display:inline-block;padding:1px 8px;margin:0 6px 4px 0;border-radius:10px;font-size:0.8em;font-weight:600;
  background:#e0e7ff;color:#1e3a8a}
.pc-badge.pc-extractive {background:#fef3c7;color:#78350f}
.pc-badge.pc-abstained {background:#fee2e2;color:#7f1d1d}
.pc-filter {display:inline-block;padding:1px 8px;margin:0 6px 4px 0;border-radius:10px;font-size:0.8em;
  border:1px solid #64748b;color:#334155}
.pc-head {display:flex;flex-wrap:wrap;align-items:center}
.pc-copy {margin-left:auto;font-size:0.8em;padding:0 8px;border:1px solid #94a3b8;border-radius:6px;cursor:pointer;
  background:transparent;color:inherit}
a.pc-cite {color:#1d4ed8 !important;text-decoration:underline dotted !important;font-weight:600;cursor:pointer}
a.pc-cite:hover {text-decoration:underline solid !important}
.pc-flag {display:inline-block;margin:0 2px;padding:0 6px;border-radius:8px;font-size:0.75em;font-weight:700;
  background:#fee2e2;color:#7f1d1d;cursor:help}
.pc-derived {font-style:italic;text-decoration:underline dotted #94a3b8;cursor:help}
.pc-derived::after {content:" \\2248";font-style:normal;opacity:0.7}
.pc-sources {max-height:80vh;overflow-y:auto}
.pc-source {border-left:3px solid #6366f1;padding:4px 10px;margin:0 0 12px 0;scroll-margin:40px}
.pc-source mark, .pc-best mark {background:#fde68a;color:#1f2937;padding:0 1px}
.pc-markno {font-size:0.7em;font-weight:700;color:#1d4ed8;margin-left:1px}
.pc-best {font-size:0.9em;margin:4px 0}
.pc-flash {animation:pc-flash 1.6s ease-out}
@keyframes pc-flash {0% {box-shadow:0 0 0 3px #f59e0b;background:rgba(245,158,11,0.18)} 100% {box-shadow:none}}
.pc-meta {font-size:0.85em;opacity:0.85}
.pc-warn {color:#92400e;font-size:0.85em}
.pc-error {color:#b91c1c;font-weight:600}
.pc-wait {font-style:italic;opacity:0.85}
.pc-stream {border-top:1px dashed #94a3b8;margin-top:8px;padding-top:6px}
.pc-stream-head {font-size:0.8em;font-weight:600;opacity:0.85}
.pc-refs {font-size:0.85em;margin-top:6px}
.pc-refs ul {margin:2px 0 0 0;padding-left:18px}
.pc-trace {font-size:0.8em;margin-top:6px}
.pc-answer .pc-trace table, .pc-answer .pc-trace ul, .pc-answer .pc-trace li {font-size:0.85em !important;margin:0}
.pc-trace td, .pc-trace th {padding:1px 6px}
.pc-sources h4 {margin:0 0 8px 0}
.pc-progress {display:flex;gap:10px;align-items:center;font-size:0.9em}
.pc-progress progress {width:220px}
#notice:empty {display:none}
.dark .pc-badge {background:#312e81;color:#e0e7ff}
.dark .pc-badge.pc-extractive {background:#78350f;color:#fef3c7}
.dark .pc-badge.pc-abstained {background:#7f1d1d;color:#fee2e2}
.dark .pc-filter {border-color:#94a3b8;color:#e2e8f0}
.dark a.pc-cite, .dark .pc-markno {color:#93c5fd !important}
.dark .pc-flag {background:#7f1d1d;color:#fee2e2}
.dark .pc-source mark, .dark .pc-best mark {background:#854d0e;color:#fef9c3}
.dark .pc-warn {color:#fcd34d}
.dark .pc-error {color:#fca5a5}
@media (max-width: 700px) {
  #chatbot {height:46vh !important;min-height:240px}
  #title h1 {font-size:1.3em;margin:0}
  #title p {display:none}
  .pc-sources {max-height:none}
}
"""

JS = """
<script>
// The conversation list starts open on a wide screen; on a phone it stays closed so the question box is in view.
const pcSidebar = setInterval(() => {
  const side = document.querySelector('#conversations');
  if (!side) return;
  clearInterval(pcSidebar);
  if (window.innerWidth >= 1100 && !side.classList.contains('open')) side.querySelector('.toggle-button').click();
}, 200);
document.addEventListener('click', (event) => {
  const cite = event.target.closest('a.pc-cite[href^="#pc-paper-"]');
  if (cite) {
    event.preventDefault();
    const id = cite.getAttribute('href').slice(1);
    const message = cite.closest('.pc-answer');
    const target = document.querySelector('#sources [id="' + id + '"]')
      || (message && message.querySelector('.pc-ref.' + CSS.escape(id)));
    if (target) {
      target.scrollIntoView({behavior: 'smooth', block: 'center'});
      target.classList.remove('pc-flash');
      void target.offsetWidth;
      target.classList.add('pc-flash');
    }
    return;
  }
  const copy = event.target.closest('button.pc-copy');
  if (copy) {
    const md = copy.closest('.pc-answer').querySelector('.pc-md');
    const text = md ? md.getAttribute('title') : '';
    const done = () => { copy.textContent = 'Copied'; setTimeout(() => { copy.textContent = 'Copy'; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      const area = document.createElement('textarea');
      area.value = text; document.body.appendChild(area); area.select();
      document.execCommand('copy'); area.remove(); done();
    }
  }
});
</script>
"""
