// Measures the character classes Hugging Face tokenizers (npm `tokenizers` on NODE_PATH) uses, over all code points:
// onig's \p{L} \p{N} \p{P} \p{S} \p{M} \s (Split regex pre-tokenizer) and Rust regex's \w (Whitespace pre-tokenizer).
// Writes OUT.json {L: [cp...], ..., w: [cp...]}; compare with .NET's categories (done for docs/SPEC.md: no difference
// with .NET 10 for any class, and none with RustWordChar). Usage: node scripts/hf_unicode_probe.js OUT.json
const { Tokenizer } = require("tokenizers");
const fs = require("fs");
const os = require("os");
const path = require("path");

function tokenizer(preTokenizer) {
  const file = path.join(os.tmpdir(), `hf-probe-${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify({ version: "1.0", truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer: preTokenizer, post_processor: null, decoder: null,
    model: { type: "WordLevel", vocab: { "<unk>": 0 }, unk_token: "<unk>" } }));
  const tok = Tokenizer.fromFile(file);
  fs.unlinkSync(file);
  return tok;
}

// Pieces (offsets count code points) of `text` for each block of code points; `keep(piece)` returns the code point it proves.
async function scan(tok, render, keep) {
  const found = [];
  for (let base = 0; base < 0x110000; base += 0x4000) {
    const cps = [];
    for (let cp = base; cp < base + 0x4000; cp++) if (!(cp >= 0xd800 && cp < 0xe000)) cps.push(cp);
    const text = render(cps);
    const chars = Array.from(text);
    const enc = await tok.encode(text, null, { addSpecialTokens: false });
    for (const [a, b] of enc.getOffsets()) { const cp = keep(chars.slice(a, b)); if (cp !== undefined) found.push(cp); }
  }
  return found;
}

(async () => {
  const out = {};
  const classes = { L: "\\p{L}", N: "\\p{N}", P: "\\p{P}", S: "\\p{S}", M: "\\p{M}", s: "\\s" };
  for (const [name, re] of Object.entries(classes)) {
    // Isolated matches between \u0001 separators (in none of the classes): a matched code point is a piece of its own.
    const tok = tokenizer({ type: "Split", pattern: { Regex: re }, behavior: "Isolated", invert: false });
    out[name] = await scan(tok, cps => "\u0001" + cps.map(c => String.fromCodePoint(c)).join("\u0001") + "\u0001",
      p => (p.length === 1 && p[0] !== "\u0001" ? p[0].codePointAt(0) : undefined));
  }
  // \w+|[^\w\s]+: "aXa" stays one piece exactly when X is a word character.
  out.w = await scan(tokenizer({ type: "Whitespace" }), cps => cps.map(c => "a" + String.fromCodePoint(c) + "a").join(" "),
    p => (p.length === 3 && p[0] === "a" && p[2] === "a" ? p[1].codePointAt(0) : undefined));
  fs.writeFileSync(process.argv[2], JSON.stringify(out));
})();
