// Writes DIR/expected.jsonl for DIR/tokenizer.json and DIR/inputs.jsonl with Hugging Face tokenizers (npm
// `tokenizers`, on NODE_PATH): per input {text, ids, ids_special, decoded, decoded_special}.
const fs = require("fs");
const { Tokenizer } = require("tokenizers");
const dir = process.argv[2];
(async () => {
  const tok = Tokenizer.fromFile(dir + "/tokenizer.json");
  const out = [];
  for (const line of fs.readFileSync(dir + "/inputs.jsonl", "utf8").split("\n")) {
    if (!line) continue;
    const text = JSON.parse(line);
    const ids = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    const sp = (await tok.encode(text, null, { addSpecialTokens: true })).getIds();
    out.push(JSON.stringify({ text, ids, ids_special: sp, decoded: await tok.decode(ids, true),
      decoded_special: await tok.decode(sp, false) }));
  }
  fs.writeFileSync(dir + "/expected.jsonl", out.join("\n") + "\n");
})();
